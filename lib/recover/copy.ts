// The copy phase: one read of the snapshot feeds every host (in batches of `forks`),
// each host verifies its SHA-256 before the file gets the name restore reads; a host
// whose copy failed is retried over a new connection (copy-retry.ts). With --relay
// (or auto, on a slow link) the file goes to one host and on from there
// (lib/transfer/relay.ts); a snapshot already on a member is always relayed.
import type { RecoveryPlan } from '../plan/recovery.ts'
import type { SshHost } from '../ssh/connection.ts'
import { fanOutUpload } from '../ssh/upload.ts'
import type { HostPool } from '../task/hosts.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { formatBytes, formatRate } from '../task/format.ts'
import { copyAgain } from './copy-retry.ts'
import { relayCopy } from '../transfer/relay.ts'
import { sh } from '../shell/sh.ts'
import { NO_ZSTD, uploadScript } from '../plan/scripts.ts'
import { localZstd, zstdStream } from '../transfer/compress.ts'
import type { RecoverOptions } from './recover.ts'

export async function copyPhase(plan: RecoveryPlan, pool: HostPool, o: RecoverOptions, journal: Journal, forks: number, relock: (name: string, host: SshHost) => Promise<void>) {
  const size = plan.snapshot.size
  const todo = plan.members.filter((m) => !m.resume.snapshotInPlace)
  const views = new Map<string, (text: string) => void>()
  type Outcome = { ok: boolean; error?: unknown; secs: number; text?: string }
  const results = new Map<string, { promise: Promise<{ secs: number; text?: string }>; settle: (r: Outcome) => void }>()
  for (const m of todo) {
    let settle!: (r: Outcome) => void
    const promise = new Promise<{ secs: number; text?: string }>((resolve, reject) => {
      settle = (r) => (r.ok ? resolve(r) : reject(r.error))
    })
    promise.catch(() => {})
    results.set(m.name, { promise, settle })
  }
  // One read of the file feeds each batch of `forks` hosts.
  // With `compress` (the relay's first leg) zstd when both ends have it (lib/transfer/compress.ts).
  const direct = async (members: typeof todo, onBytes?: (name: string, bytes: number) => void, compress = false): Promise<Map<string, Outcome>> => {
    const got = new Map<string, Outcome>()
    const zstd = compress && localZstd()
    for (let i = 0; i < members.length; i += forks) {
      const batch = members.slice(i, i + forks)
      const t0 = Date.now()
      const outcomes = await fanOutUpload(zstd ? () => zstdStream(plan.snapshot.path) : plan.snapshot.path, batch.map((m) => ({
        host: pool.get(m.name),
        command: zstd ? uploadScript(m.paths, plan.snapshot.sha256, 'zstd') : m.scripts.upload,
        onProgress: (bytes) => {
          onBytes?.(m.name, bytes)
          const secs = (Date.now() - t0) / 1000
          views.get(m.name)?.(zstd
            ? `${formatBytes(bytes)} sent zstd-compressed (${formatBytes(size)} in all), ${formatRate(bytes, secs)}`
            : `${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, secs)}`)
        },
      }))).catch((error) => batch.map(() => ({ ok: false as const, error })))
      const secs = (Date.now() - t0) / 1000
      batch.forEach((m, j) => {
        const out = outcomes[j]
        got.set(m.name, out.ok ? { ok: true, secs, text: zstd ? 'zstd-compressed on the way' : undefined } : { ok: false, error: out.error, secs })
      })
    }
    // A host without zstd read nothing: it gets the file plain.
    const plain = members.filter((m) => zstd && (got.get(m.name)?.error as { code?: number } | undefined)?.code === NO_ZSTD)
    if (plain.length) for (const [name, r] of await direct(plain, onBytes)) got.set(name, r)
    return got
  }
  const remote = plan.snapshot.host ? { host: plan.snapshot.host, path: plan.snapshot.path } : undefined
  const relay = remote ? 'relay' : o.relay === true ? 'relay' : o.relay === false ? 'off' : 'auto'
  if (relay === 'off' || (todo.length < 2 && !remote)) {
    void direct(todo).then((got) => { for (const [name, r] of got) results.get(name)!.settle(r) })
  } else {
    const asRelay = (m: (typeof plan.members)[number]) => ({ ...m, upload: m.scripts.upload, snapshotPath: m.paths.snapshot, inPlace: m.resume.snapshotInPlace })
    void relayCopy({
      mode: relay, todo: todo.map(asRelay), all: plan.members.map(asRelay), size, hostOf: (name) => pool.get(name), forks, remote,
      connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: (w) => o.ui.warn(w), becomePassword: o.becomePassword },
      direct: (members, onBytes, compress) => direct(todo.filter((t) => members.some((m) => m.name === t.name)), onBytes, compress),
      local: async (m, file) => {
        await pool.get(m.name).exec(sh`exec < ${file}
${m.scripts.upload}`)
      },
      settle: (name, r) => results.get(name)!.settle(r),
      progress: (name, text) => views.get(name)?.(text),
      warn: (text) => o.ui.warn(text),
    }).catch((error) => { for (const m of todo) results.get(m.name)!.settle({ ok: false, error, secs: 0 }) })
  }
  return runPhase(o.ui, journal, 'copy', `Copy snapshot (${formatBytes(size)}) to every host`, plan.members.map((m) => ({
    host: m.name,
    run: async (view) => {
      if (m.resume.snapshotInPlace) return { value: null, text: 'same snapshot already on this host (sha256 matched)', skipped: true }
      views.set(m.name, view.update)
      const got = await results.get(m.name)!.promise.catch((first) => remote ? Promise.reject(first) : copyAgain(first, m, plan.snapshot.path, pool, {
        retries: o.retries ?? 2,
        relock: (host) => relock(m.name, host),
        connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: (w) => o.ui.warn(w), becomePassword: o.becomePassword },
        signal: o.signal,
        say: (text) => {
          view.update(text)
          o.ui.warn(`${m.name}: copy ${text}`)
        },
        onProgress: (bytes, t0) => view.update(`${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, (Date.now() - t0) / 1000)}`),
      }).then((secs) => ({ secs, text: 'direct copy, retried' })))
      const { secs, text } = got
      return { value: null, text: `${formatBytes(size)} in ${secs.toFixed(1)} s (${formatRate(size, secs)}), sha256 verified on host${text ? `; ${text}` : ''}` }
    },
  })), plan.members.length)
}
