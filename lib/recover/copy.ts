// The copy: one read of the snapshot feeds every host (in batches of `forks`), each
// host verifies its SHA-256 before the file gets the name restore reads; a host whose
// copy failed is retried over a new connection (copy-retry.ts). It starts as soon as
// every member is locked, while preflight's checks still run (startUploads); a
// preflight that fails takes it back (takeBackUploads), so a refused run leaves the
// hosts as it found them.
import type { RecoveryPlan } from '../plan/recovery.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { Script } from '../shell/sh.ts'
import { unUploadScript, uploadCheckScript, uploadReceiveScript, uploadScript } from '../plan/scripts.ts'
import type { HeldLock } from './lock.ts'
import type { MemberPaths } from '../plan/paths.ts'
import { formatError } from '../errors.ts'
import { fanOutUpload } from '../ssh/upload.ts'
import type { HostPool } from '../task/hosts.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { formatBytes, formatRate } from '../task/format.ts'
import { copyAgain } from './copy-retry.ts'
import type { RecoverOptions } from './recover.ts'

export interface UploadDone {
  secs: number
  /** The upload script's output: `in-place=`, `created-work=`, `copied=`. */
  stdout: string
}

export interface Uploads {
  /** Per host: settles when its copy is verified there (or found in place), or failed. */
  results: Map<string, Promise<UploadDone>>
  /** Where each host's progress line goes, once the copy phase shows. */
  views: Map<string, (text: string) => void>
  /** Stops every upload still running (their part files are removed on the hosts). */
  abort(): void
}

const progress = (bytes: number, size: number, t0: number) =>
  `${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, (Date.now() - t0) / 1000)}`

/** Where one host's copy goes: over its run's session when it has one that can receive files, else its own exec. */
export interface UploadPlace {
  name: string
  host: SshHost
  paths: MemberPaths
  lock?: HeldLock
}

/**
 * Starts copying `file` to every target; one read of the file feeds each batch of
 * `forks` hosts. Over a session the host first checks (in place? room?) in a quick
 * step, then receives the bytes on the session's own channel: no login shell.
 */
export function startUploads(file: string, sha256: string, size: number, targets: UploadPlace[], forks: number): Uploads {
  const ctl = new AbortController()
  const views = new Map<string, (text: string) => void>()
  const settles = new Map<string, (r: { ok: true; done: UploadDone } | { ok: false; error: unknown }) => void>()
  const results = new Map<string, Promise<UploadDone>>()
  for (const t of targets) {
    const promise = new Promise<UploadDone>((resolve, reject) => settles.set(t.name, (r) => (r.ok ? resolve(r.done) : reject(r.error))))
    promise.catch(() => {})
    results.set(t.name, promise)
  }
  void (async () => {
    for (let i = 0; i < targets.length; i += forks) {
      const batch = targets.slice(i, i + forks)
      const t0 = Date.now()
      // Over a session: check first; a host that has the file, or no room, is done before any byte is read.
      const checked = await Promise.all(batch.map(async (t) => {
        const via = t.lock && (await t.lock.session.ready, t.lock.session.canReceive) ? t.lock : undefined
        if (!via) return { t, send: true, check: '' }
        try {
          const c = await via.exec(uploadCheckScript(t.paths, sha256, size), { quick: true })
          if (/^in-place=/m.test(c.stdout)) {
            settles.get(t.name)!({ ok: true, done: { secs: (Date.now() - t0) / 1000, stdout: c.stdout } })
            return { t, send: false, check: c.stdout }
          }
          return { t, send: true, check: c.stdout, via }
        } catch (error) {
          settles.get(t.name)!({ ok: false, error })
          return { t, send: false, check: '' }
        }
      }))
      const go = checked.filter((c) => c.send)
      if (ctl.signal.aborted) {
        go.forEach((c) => settles.get(c.t.name)!({ ok: false, error: new Error('copy stopped before it began') }))
        continue
      }
      const outcomes = await fanOutUpload(file, go.map(({ t, via }) => ({
        host: t.host,
        command: via ? uploadReceiveScript(t.paths, sha256) : uploadScript(t.paths, sha256, size),
        via: via && { channel: via.channel, receive: (script, bytes, feed) => via.session.receive(script, bytes, feed), drop: () => via.drop() },
        onProgress: (bytes) => views.get(t.name)?.(progress(bytes, size, t0)),
      })), ctl.signal).catch((error) => go.map(() => ({ ok: false as const, error })))
      const secs = (Date.now() - t0) / 1000
      go.forEach(({ t, check }, j) => {
        const out = outcomes[j]
        settles.get(t.name)!(out.ok ? { ok: true, done: { secs, stdout: `${check}${out.result.stdout}` } } : { ok: false, error: Object.assign(out.error as object, { checkOutput: check }) })
      })
    }
  })()
  return { results, views, abort: () => ctl.abort() }
}

/**
 * Takes back what uploads that ran alongside a preflight which then failed added:
 * stops those still running, then removes each copied file, its `verified` line,
 * and the work dir the upload made. Returns what could not be taken back.
 */
export async function takeBackUploads(
  uploads: Uploads,
  members: Array<{ name: string; paths: MemberPaths }>,
  sha256: string,
  /** The host's session; a session an aborted copy ended is opened again (the run's lock taken over). */
  remote: (name: string) => Promise<{ exec(script: Script, options?: { allowFailure?: boolean; timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }> }>,
): Promise<string[]> {
  uploads.abort()
  const left: string[] = []
  await Promise.all(members.map(async (m) => {
    const r = uploads.results.get(m.name)
    if (!r) return
    const out = await r.then((d) => d.stdout, (e: { stdout?: string; checkOutput?: string }) => `${e?.checkOutput ?? ''}${e?.stdout ?? ''}`)
    if (/^in-place=/m.test(out)) return
    try {
      const undo = await (await remote(m.name)).exec(unUploadScript(m.paths, sha256, /^created-work=/m.test(out)), { timeoutMs: 30_000 })
      const kept = /^left=(.*)$/m.exec(undo.stdout)?.[1]
      if (kept) left.push(`${m.name}: ${kept}`)
    } catch (err) {
      left.push(`${m.name}: could not remove the copy in ${m.paths.work} (${formatError(err).split('\n')[0]})`)
    }
  }))
  return left
}

export async function copyPhase(plan: RecoveryPlan, pool: HostPool, o: RecoverOptions, journal: Journal, forks: number, relock: (name: string, host: SshHost) => Promise<void>, started?: Uploads, locks?: (name: string) => HeldLock | undefined) {
  const size = plan.snapshot.size
  const uploads = started ?? startUploads(plan.snapshot.path, plan.snapshot.sha256, size, plan.members.filter((m) => !m.resume.snapshotInPlace).map((m) => ({ name: m.name, host: pool.get(m.name), paths: m.paths, lock: locks?.(m.name) })), forks)
  const inPlace = { value: null, text: 'same snapshot already on this host (sha256 matched)', skipped: true }
  return runPhase(o.ui, journal, 'copy', `Copy snapshot (${formatBytes(size)}) to every host`, plan.members.map((m) => ({
    host: m.name,
    run: async (view) => {
      const result = uploads.results.get(m.name)
      if (!result) return inPlace
      uploads.views.set(m.name, view.update)
      const done = await result.catch(async (first) => {
        // A copy over the session that was cut ended the session (and so the lock) on a connection that may live on.
        if (locks?.(m.name)?.closed && !pool.get(m.name).closed) await relock(m.name, pool.get(m.name))
        return copyAgain(first, m, plan.snapshot.path, pool, {
        retries: o.retries ?? 2,
        relock: (host) => relock(m.name, host),
        connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: (w) => o.ui.warn(w), becomePassword: o.becomePassword },
        signal: o.signal,
        say: (text) => {
          view.update(text)
          o.ui.warn(`${m.name}: copy ${text}`)
        },
        onProgress: (bytes, t0) => view.update(progress(bytes, size, t0)),
        }).then((secs) => ({ secs, stdout: '' }))
      })
      if (/^in-place=/m.test(done.stdout)) return inPlace
      return { value: null, text: `${formatBytes(size)} in ${done.secs.toFixed(1)} s (${formatRate(size, done.secs)}), sha256 verified on host` }
    },
  })), plan.members.length)
}
