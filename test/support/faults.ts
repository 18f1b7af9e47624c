// Helpers for the fault tests (test/recover/faults-*.e2e.test.ts): a UI that lets a
// test act at an exact point of a run (a phase starting, a host's progress), a
// snapshot big enough that a copy can be cut half way, and the CLI as a child
// process in its own process group, as an operator's terminal runs it.
import { spawn, spawnSync } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { clusterStart, sshArgs, sshExec, openLab, type Lab } from '../../lib/lab/index.ts'
import { sh, trusted } from '../../lib/shell/sh.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { backup } from '../../lib/backup/backup.ts'
import type { Ui } from '../../lib/task/ui.ts'
import { captureUi, gateway } from './lab.ts'

export const repo = fileURLToPath(new URL('../../', import.meta.url))
export const BIG = '/etcd-rescue/big/'

export interface UiHooks {
  /** A phase is about to start (called synchronously, before any host's step). */
  phase?: (title: string) => void
  /** A host is about to start a step of the recovery's pipeline (synchronously, before its remote command). */
  step?: (host: string, step: string) => void
  update?: (host: string, text: string) => void
  warn?: (text: string) => void
}

/** captureUi, plus hooks that run synchronously at the moment the run reports something. */
export function hookedUi(hooks: UiHooks): Ui & { text(): string } {
  const inner = captureUi()
  return {
    text: () => inner.text(),
    info: (t) => inner.info(t),
    warn: (t) => {
      inner.warn(t)
      hooks.warn?.(t)
    },
    phase: (title, hosts) => {
      hooks.phase?.(title)
      const v = inner.phase(title, hosts)
      return { ...v, update: (h, t) => { v.update(h, t); hooks.update?.(h, t) } }
    },
    pipeline: (title, hosts, steps) => {
      hooks.phase?.(title)
      const v = inner.pipeline(title, hosts, steps)
      return {
        ...v,
        begin: (h, s) => { hooks.step?.(h, s); v.begin(h, s) },
        update: (h, t) => { v.update(h, t); hooks.update?.(h, t) },
      }
    },
  }
}

/**
 * A cluster holding `mib` values of 900 KiB each (etcd takes up to 1.5 MiB per
 * request) and a backup of it: a snapshot of about `mib` MiB, whose copy takes
 * long enough to be cut half way. The values are incompressible (AES-CTR of
 * zeros, a key per value). The fault tests that cut a copy also run with
 * compress: false (--no-compress): they test the plain copy, whatever the
 * sample says; a compressed stream cut half way is tested in upload.test.ts.
 * Returns key → sha256 of every value.
 */
export async function bigCluster(lab: Lab, mib: number, wipe = true) {
  await clusterStart(lab, { wipe })
  const gw = gateway(`http://${lab.state.hosts[0].address}:2379`)
  const manifest: Record<string, string> = {}
  for (let i = 0; i < mib; i++) {
    const big = createCipheriv('aes-256-ctr', createHash('sha256').update(`${lab.name}-${i}`).digest(), Buffer.alloc(16)).update(Buffer.alloc(900 * 1024))
    big.writeUInt32BE(i, 0)
    const key = `${BIG}${String(i).padStart(4, '0')}`
    await gw.put(key, big)
    manifest[key] = createHash('sha256').update(big).digest('hex')
  }
  const members = membersOf(loadInventory(lab.paths.inventory)).members
  const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'faults-backup-')), ui: captureUi() })
  return { members, manifest, snapshot: b.file, revision: b.revision }
}

/** Every big value on every member, read from that member alone. */
export async function expectBigValues(lab: Lab, manifest: Record<string, string>) {
  for (const h of lab.state.hosts) {
    const kvs = await gateway(`http://${h.address}:2379`).rangePrefix(BIG, { serializable: true })
    const got = Object.fromEntries(kvs.map((kv) => [kv.key.toString(), createHash('sha256').update(kv.value).digest('hex')]))
    expect(got, `values on ${h.name}`).toEqual(manifest)
  }
}

/** Takes a lab host's link down or up, from this machine's end of its veth pair. */
export function link(lab: Lab, i: number, state: 'up' | 'down') {
  const veth = lab.state.hosts[i - 1].veth!
  spawnSync('ip', ['link', 'set', 'dev', veth, state], { stdio: 'ignore' })
}

/**
 * After a link comes back, until the host takes an SSH command again (up to 15 s).
 * The first connections may meet resets a moment (seen once in CI right after
 * `link up`, from the test's own check): the test's checks then wait for the host,
 * not for luck.
 */
export async function sshBack(lab: Lab, i: number): Promise<void> {
  for (let t = 0; t < 60; t++) {
    if ((await sshExec(lab, i, trusted('true'), { timeoutMs: 10_000 })).code === 0) return
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** A command on a lab host over OpenSSH, synchronously: for hooks that must act before the run goes on. */
export function onHostNow(lab: Lab, i: number, command: string, input?: Buffer): string {
  const { paths } = openLab(lab)
  // A systemd lab logs in as its sudo user (passwordless sudo here, as sshExec does it).
  const sd = lab.state.systemd
  if (sd && sd.sudo !== 'nopasswd') throw new Error('onHostNow: a lab whose sudo asks a password is not supported')
  const argv = sshArgs(paths.privateKey, paths.knownHosts, lab.state.hosts[i - 1].address, sd?.user)
  const r = spawnSync(argv[0], [...argv.slice(1), '--', sd ? sh`sudo -n -- sh -c ${command}`.text : command], { input, encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`${command} on host ${i}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  out: string
}

/**
 * scripts/recover.mjs run by zx as an operator runs it, in its own process
 * group (a terminal's foreground job): `when` sees the output as it comes and
 * may signal the whole group, as Ctrl-C or a dying laptop would.
 */
export function runRecoverCli(args: string[], when?: (out: string, kill: (sig: NodeJS.Signals) => void) => void, script = 'recover.mjs', input?: string): Promise<CliRun> {
  const child = spawn(join(repo, 'node_modules/.bin/zx'), [join(repo, 'scripts', script), ...args], {
    cwd: repo, detached: true, env: { ...process.env, CI: 'true' }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  })
  if (input !== undefined) child.stdin!.end(input)
  let out = ''
  const kill = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig)
    } catch { /* already gone */ }
  }
  const timer = setTimeout(() => kill('SIGKILL'), 280_000)
  const onData = (d: Buffer) => {
    out += d
    when?.(out, kill)
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer)
    resolve({ code, signal, out })
  }))
}
