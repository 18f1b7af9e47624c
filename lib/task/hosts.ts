// Opening and closing the SSH connections of a run, one per member host.
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
    for (const h of this.hosts.values()) h.close()
    this.hosts.clear()
  }
}

/** Connects to every member in parallel; returns the failures (host key, auth, timeout). */
export async function connectAll(
  members: Member[],
  pool: HostPool,
  ui: Ui,
  journal: Journal,
  options: ConnectOptions,
  forks: number,
) {
  return runPhase(ui, journal, 'connect', 'Connect over SSH', members.map((m) => ({
    host: m.name,
    run: async () => {
      const host = await SshHost.connect(m.name, m.ssh, options)
      pool.hosts.set(m.name, host)
      return { value: host, text: `${targetLabel(m.ssh)}${m.ssh.become ? ' (sudo)' : ''}` }
    },
  })), forks)
}
