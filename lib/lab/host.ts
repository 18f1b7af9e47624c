// Booting and stopping one lab host. Boot: `ip netns exec NS unshare --pid
// --fork --mount --uts ... sh init.sh` started detached; unshare stays as the
// parent of the host's PID 1 (init-script.ts), whose root-namespace PID is read
// from /proc/<unshare>/task/<unshare>/children and recorded. Stop: SIGKILL to
// that PID 1 ends the whole PID namespace (every process of the host) and with
// it the host's mount namespace and all its mounts.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { RescueError } from '../errors.ts'
import { hostInitScript, type HostInitSpec } from './init-script.ts'
import { childPids, isRunning, killRef, processRef, waitGone } from './procs.ts'
import type { HostState, ProcessRef } from './state.ts'

/**
 * Exec "$@" with no open descriptors but 0-2. The host's processes live on after
 * `up` returns: a pipe they inherited from whoever ran `up` (a CI runner, a shell's
 * command substitution) would keep that caller waiting for EOF. Node passes on
 * any descriptor its own parent left inheritable; dash cannot close those above 9.
 */
const CLOSE_FDS_AND_EXEC = 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then exec {fd}>&-; fi; done; exec "$@"'

export interface BootedHost {
  launcher: ProcessRef
  init: ProcessRef
}

/**
 * A systemd host's launcher first moves itself into the host's own cgroup (made
 * here), before `ip netns exec`, which remounts /sys; `unshare --cgroup` then makes
 * that cgroup the root of the host's view.
 */
const ENTER_CGROUP = 'echo $$ >"$1/cgroup.procs" || exit 1; shift; '

/** Start the host's init; resolves once its PID 1 is known (sshd may still be starting). */
export async function bootHost(netns: string, init: HostInitSpec, scriptFile: string, consoleLog: string, cgroup?: string): Promise<BootedHost> {
  // A file, not `sh -c`, so `ps` on the machine shows its path rather than the whole script.
  writeFileSync(scriptFile, hostInitScript(init), { mode: 0o700 })
  if (cgroup) mkdirSync(cgroup) // here, not in the launcher: a child of it could be taken for the host's init
  const out = openSync(consoleLog, 'a')
  const child = spawn('bash', [
    '-c', cgroup ? ENTER_CGROUP + CLOSE_FDS_AND_EXEC : CLOSE_FDS_AND_EXEC, 'lab-launch',
    ...(cgroup ? [cgroup] : []),
    'ip', 'netns', 'exec', netns,
    'unshare', '--pid', '--fork', '--mount', '--uts', ...(cgroup ? ['--cgroup'] : []), '--propagation', 'private',
    'sh', scriptFile,
  ], { detached: true, stdio: ['ignore', out, out] })
  closeSync(out)
  const spawned = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!))
    child.once('error', (e) => reject(new RescueError(`cannot start host ${init.hostname}: ${e.message}`, { cause: e })))
  })
  // Do not keep `up` alive for the host; Node still reaps it if it ends first.
  child.unref()
  const launcher = processRef(spawned)
  const deadline = Date.now() + 5000
  while (launcher && Date.now() < deadline) {
    // Only once the launcher has become unshare is its child the host's init.
    const [pid] = commOf(launcher.pid) === 'unshare' ? childPids(launcher.pid) : []
    const init1 = pid ? processRef(pid) : undefined
    if (init1) return { launcher, init: init1 }
    if (!isRunning(launcher)) break
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new RescueError('the host did not start', { where: init.hostname, hint: consoleTail(consoleLog) })
}

/** Wait until sshd answers on ADDRESS:22 with its banner, or the host's init died. */
export async function waitForSsh(host: HostState, consoleLog: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!isRunning(host.init)) {
      throw new RescueError('the host stopped while booting', { where: host.name, hint: consoleTail(consoleLog) })
    }
    if (await sshBanner(host.address, 500)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new RescueError(`sshd on ${host.address} did not answer within ${timeoutMs / 1000} s`, {
    where: host.name,
    hint: consoleTail(consoleLog),
  })
}

/** Does something on ADDRESS:22 greet like an SSH server? */
export function sshBanner(address: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port: 22 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('data', (b: Buffer) => done(b.toString('latin1').startsWith('SSH-')))
  })
}

/** Kill the host's PID namespace, then its launcher if it lingers. Returns PIDs that would not die. */
export async function killHost(host: HostState): Promise<number[]> {
  killRef(host.init)
  await waitGone([host.init])
  killRef(host.launcher)
  const left = await waitGone([host.init, host.launcher])
  return left.map((r) => r.pid)
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return undefined
  }
}

function consoleTail(path: string): string {
  try {
    const tail = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-6).join('\n    ')
    return tail ? `Its console (${path}) ends with:\n    ${tail}` : `Its console (${path}) is empty.`
  } catch {
    return `See ${path}.`
  }
}
