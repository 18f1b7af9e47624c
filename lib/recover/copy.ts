// The copy phase: one read of the snapshot feeds every host (in batches of `forks`),
// each host verifies its SHA-256 before the file gets the name restore reads; a host
// whose copy failed is retried over a new connection (copy-retry.ts).
import type { RecoveryPlan } from '../plan/recovery.ts'
import type { SshHost } from '../ssh/connection.ts'
import { fanOutUpload } from '../ssh/upload.ts'
import type { HostPool } from '../task/hosts.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { formatBytes, formatRate } from '../task/format.ts'
import { copyAgain } from './copy-retry.ts'
import type { RecoverOptions } from './recover.ts'

export async function copyPhase(plan: RecoveryPlan, pool: HostPool, o: RecoverOptions, journal: Journal, forks: number, relock: (name: string, host: SshHost) => Promise<void>) {
  const size = plan.snapshot.size
  const todo = plan.members.filter((m) => !m.resume.snapshotInPlace)
  const views = new Map<string, (text: string) => void>()
  const results = new Map<string, { promise: Promise<number>; settle: (r: { ok: boolean; error?: unknown; secs: number }) => void }>()
  for (const m of todo) {
    let settle!: (r: { ok: boolean; error?: unknown; secs: number }) => void
    const promise = new Promise<number>((resolve, reject) => {
      settle = (r) => (r.ok ? resolve(r.secs) : reject(r.error))
    })
    promise.catch(() => {})
    results.set(m.name, { promise, settle })
  }
  // One read of the file feeds each batch of `forks` hosts.
  void (async () => {
    for (let i = 0; i < todo.length; i += forks) {
      const batch = todo.slice(i, i + forks)
      const t0 = Date.now()
      const outcomes = await fanOutUpload(plan.snapshot.path, batch.map((m) => ({
        host: pool.get(m.name),
        command: m.scripts.upload,
        onProgress: (bytes) => {
          const secs = (Date.now() - t0) / 1000
          views.get(m.name)?.(`${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, secs)}`)
        },
      }))).catch((error) => batch.map(() => ({ ok: false as const, error })))
      const secs = (Date.now() - t0) / 1000
      batch.forEach((m, j) => {
        const out = outcomes[j]
        results.get(m.name)!.settle(out.ok ? { ok: true, secs } : { ok: false, error: out.error, secs })
      })
    }
  })()
  return runPhase(o.ui, journal, 'copy', `Copy snapshot (${formatBytes(size)}) to every host`, plan.members.map((m) => ({
    host: m.name,
    run: async (view) => {
      if (m.resume.snapshotInPlace) return { value: null, text: 'same snapshot already on this host (sha256 matched)', skipped: true }
      views.set(m.name, view.update)
      const secs = await results.get(m.name)!.promise.catch((first) => copyAgain(first, m, plan.snapshot.path, pool, {
        retries: o.retries ?? 2,
        relock: (host) => relock(m.name, host),
        connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: (w) => o.ui.warn(w), becomePassword: o.becomePassword },
        signal: o.signal,
        say: (text) => {
          view.update(text)
          o.ui.warn(`${m.name}: copy ${text}`)
        },
        onProgress: (bytes, t0) => view.update(`${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, (Date.now() - t0) / 1000)}`),
      }))
      return { value: null, text: `${formatBytes(size)} in ${secs.toFixed(1)} s (${formatRate(size, secs)}), sha256 verified on host` }
    },
  })), plan.members.length)
}
