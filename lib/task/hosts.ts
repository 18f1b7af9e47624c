// Opening and closing the SSH connections of a run, one per member host.
import pLimit from 'p-limit'
import type { Member } from '../inventory/members.ts'
import { SshHost, targetLabel, type ConnectOptions } from '../ssh/connection.ts'
import type { Journal } from './journal.ts'
import { runPhase } from './phase.ts'
import type { Ui } from './ui.ts'

export class HostPool {
  readonly hosts = new Map<string, SshHost>()

  get(name: string): SshHost {
    const h = this.hosts.get(name)
    if (!h) throw new Error(`no connection to ${name}`)
    return h
  }

  closeAll(): void {
    this.ended.abort()
    for (const h of this.hosts.values()) h.close()
    this.hosts.clear()
  }

  /** Aborted by closeAll: a connection started early and still being made is given up. */
  readonly ended = new AbortController()
}

/**
 * Starts connecting to every member (`forks` at a time) before the run shows its
 * connect phase: the SSH handshakes go on while this machine still checks the
 * snapshot. Each host's first command starts too (SshHost.startStandby), so its login
 * shell runs meanwhile; it waits for its script and runs nothing else, so nothing
 * changes on a host before the check passed. connectAll then takes these. A
 * connection still being made when the pool is closed is given up.
 */
export function startConnecting(members: Member[], pool: HostPool, options: ConnectOptions, forks: number): Map<string, Promise<SshHost>> {
  const limit = pLimit(forks)
  const signal = pool.ended.signal
  return new Map(members.map((m) => {
    const p = limit(() => SshHost.connect(m.name, m.ssh, { ...options, signal })).then((host) => {
      // Up after the run ended (closeAll ran while it finished its handshake): not kept.
      if (signal.aborted) {
        host.close()
        throw new Error(`${m.name}: the run ended before this connection was used`)
      }
      // In the pool at once, so that closeAll closes it even if the run ends before connectAll.
      pool.hosts.set(m.name, host)
      // The run's first command (the lock's) gets its login shell now; it waits for its script.
      host.startStandby()
      return host
    })
    p.catch(() => {})
    return [m.name, p]
  }))
}

/** Connects to every member in parallel; returns the failures (host key, auth, timeout). */
export async function connectAll(
  members: Member[],
  pool: HostPool,
  ui: Ui,
  journal: Journal,
  options: ConnectOptions,
  forks: number,
  /** Connections startConnecting began: awaited here instead of new ones. */
  started?: Map<string, Promise<SshHost>>,
) {
  return runPhase(ui, journal, 'connect', 'Connect over SSH', members.map((m) => ({
    host: m.name,
    run: async () => {
      let host = await (started?.get(m.name) ?? SshHost.connect(m.name, m.ssh, options))
      // Made early and lost meanwhile (the snapshot check took long): made again.
      if (host.closed) host = await SshHost.connect(m.name, m.ssh, options)
      pool.hosts.set(m.name, host)
      return { value: host, text: `${targetLabel(m.ssh)}${m.ssh.become ? ' (sudo)' : ''}` }
    },
  })), forks)
}
