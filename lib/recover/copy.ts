// The copy: every member gets the snapshot, verified on its host before the file gets
// the name restore reads (plain: its SHA-256 there; zstd: the frame's checksum and
// size there, of bytes hashed here as they were compressed, zstdStream). It starts
// as soon as every member is locked, while preflight's checks still run
// (startCopy); a preflight that fails takes it
// back (takeBackUploads), so a refused run leaves the hosts as it found them.
// - Direct (startUploads): one read of the file feeds each batch of `forks` hosts,
//   over each host's session (no login shell) when it can receive files.
// - Relayed (--relay, auto on a slow link, or a snapshot already on a member,
//   lib/transfer/relay.ts): the file crosses the operator's link once, to one
//   member, which passes it on over the hosts' own network.
// A host whose copy failed is retried over a new connection (copy-retry.ts).
import type { RecoveryPlan } from '../plan/recovery.ts'
import type { SshHost, ConnectOptions } from '../ssh/connection.ts'
import { sh } from '../shell/sh.ts'
import { unUploadScript, uploadCheckScript, uploadReceiveScript, uploadScript } from '../plan/scripts.ts'
import type { HeldLock } from './lock.ts'
import type { MemberPaths } from '../plan/paths.ts'
import { formatError } from '../errors.ts'
import { answerWithinMs, fanOutUpload } from '../ssh/upload.ts'
import type { HostPool } from '../task/hosts.ts'
import { formatBytes, formatRate } from '../task/format.ts'
import { copyAgain } from './copy-retry.ts'
import { relayCopy, type CopyOutcome, type CopyRoute, type DirectEach, type RelayMode } from '../transfer/relay.ts'
import { COMPRESS_MIN_RATIO, lacksZstd, localZstd, sampleRatio, uploadCompressed, zstdStream } from '../transfer/compress.ts'
import type { RecoverOptions } from './recover.ts'

export interface UploadDone {
  secs: number
  /** How it got there, when not the plain direct way ("relayed from etcd1", "zstd-compressed on the way"). */
  text?: string
  /** The upload script's output: `in-place=`, `created-work=`, `copied=`. */
  stdout: string
  route?: CopyRoute
}

export interface Uploads {
  /** Per host: settles when its copy is verified there (or found in place), or failed. */
  results: Map<string, Promise<UploadDone>>
  /** Where each host's progress line goes, once the copy phase shows. */
  views: Map<string, (text: string) => void>
  /** Stops every upload still running (their part files are removed on the hosts). */
  abort(): void
  /** Whether direct copies of this file go zstd-compressed (a retry goes the same way). */
  compressed?: Promise<boolean>
}

const progress = (bytes: number, size: number, t0: number) =>
  `${formatBytes(bytes)} of ${formatBytes(size)} (${Math.floor((bytes / size) * 100)}%), ${formatRate(bytes, (Date.now() - t0) / 1000)}`
/** What a compressed copy sent, in its report line. */
const zstdSent = (wire: number, size: number) => `zstd-compressed on the way: ${formatBytes(wire)} sent (${(size / Math.max(1, wire)).toFixed(1)}× smaller)`
const compressedProgress = (bytes: number, size: number, t0: number) =>
  `${formatBytes(bytes)} sent zstd-compressed, of a ${formatBytes(size)} snapshot, ${formatRate(bytes, (Date.now() - t0) / 1000)}`


/** Where one host's copy goes: over its run's session when it has one that can receive files, else its own exec. */
export interface UploadPlace {
  name: string
  host: SshHost
  paths: MemberPaths
  lock?: HeldLock
  /** Stops this host's copy alone; the others go on from the same read. */
  signal?: AbortSignal
}

/**
 * Starts copying `file` to every target; one read of the file feeds each batch of
 * `forks` hosts. Over a session the host first checks (in place? room?) in a quick
 * step, then receives the bytes on the session's own channel: no login shell.
 * `compress`: whether the file is worth compressing (asked once a batch's checks
 * said every host of it has zstd); the batch then gets it zstd-compressed, in frames.
 */
export function startUploads(file: string, sha256: string, size: number, targets: UploadPlace[], forks: number, onBytes?: (name: string, bytes: number) => void, compress?: () => Promise<boolean>): Uploads {
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
        const via = t.lock && !t.lock.closed && (await t.lock.session.ready, t.lock.session.canReceive) ? t.lock : undefined
        if (!via) return { t, send: true, check: '' }
        try {
          const c = await via.exec(uploadCheckScript(t.paths, sha256, size), { quick: true })
          if (/^in-place=/m.test(c.stdout)) {
            settles.get(t.name)!({ ok: true, done: { secs: (Date.now() - t0) / 1000, stdout: c.stdout, route: { via: 'in-place' } } })
            return { t, send: false, check: c.stdout }
          }
          return { t, send: true, check: c.stdout, via }
        } catch (error) {
          settles.get(t.name)!({ ok: false, error })
          return { t, send: false, check: '' }
        }
      }))
      const go = checked.filter((c) => c.send)
      // Compressed only over sessions (frames), and only when every host of the batch can take it: one read feeds them all.
      const zstd = batchTakesZstd(go) && compress !== undefined && (await compress().catch(() => false))
      const sent = new Map<string, number>()
      if (ctl.signal.aborted) {
        go.forEach((c) => settles.get(c.t.name)!({ ok: false, error: Object.assign(new Error('copy stopped before it began'), { checkOutput: c.check }) }))
        continue
      }
      const outcomes = await fanOutUpload(zstd ? () => zstdStream(file, { sha256, size }) : file, go.map(({ t, via }) => ({
        host: t.host,
        command: via ? uploadReceiveScript(t.paths, sha256, size, zstd ? 'zstd' : undefined) : uploadScript(t.paths, sha256, size),
        via: via && { channel: via.channel, receive: (script, bytes, feed) => via.session.receive(script, bytes, feed), drop: () => via.drop() },
        signal: t.signal,
        onProgress: (bytes) => {
          onBytes?.(t.name, bytes)
          sent.set(t.name, bytes)
          views.get(t.name)?.(zstd ? compressedProgress(bytes, size, t0) : progress(bytes, size, t0))
        },
      })), ctl.signal, { answerWithinMs: answerWithinMs(size) }).catch((error) => go.map(() => ({ ok: false as const, error })))
      const secs = (Date.now() - t0) / 1000
      go.forEach(({ t, check }, j) => {
        const out = outcomes[j]
        const wire = sent.get(t.name) ?? 0
        const text = zstd ? zstdSent(wire, size) : undefined
        settles.get(t.name)!(out.ok ? { ok: true, done: { secs, stdout: `${check}${out.result.stdout}`, text, route: { via: 'direct', sentBytes: wire, zstd } } } : { ok: false, error: Object.assign(out.error as object, { checkOutput: check }) })
      })
    }
  })()
  return { results, views, abort: () => ctl.abort() }
}

/**
 * Whether a batch can be sent compressed: every host of it over a session (frames)
 * whose check said it has zstd. One read feeds them all, so one host without it
 * makes the whole batch plain.
 */
export function batchTakesZstd(batch: Array<{ via?: unknown; check: string }>): boolean {
  return batch.length > 0 && batch.every((c) => c.via !== undefined && /^zstd=1$/m.test(c.check))
}

export interface CopyMember {
  name: string
  paths: MemberPaths
  /** The snapshot already here, verified (known after preflight; false before it). */
  inPlace: boolean
}

export interface CopyOptions {
  snapshot: { path: string; sha256: string; size: number; host?: string }
  members: CopyMember[]
  mode: RelayMode
  pool: HostPool
  /** The run's lock (and session) on each host. */
  locks: (name: string) => HeldLock | undefined
  forks: number
  connect: ConnectOptions
  warn: (text: string) => void
  /** A member's copy was cut for a relay (its session, and so its lock, ended): take the lock again. */
  onCut?: (name: string) => void
  /** Auto relay measures the link only once this settled (preflight's probes, running alongside). */
  quiet?: Promise<unknown>
  /** false: never compress a copy (--no-compress), the relay's first leg neither. Default: a direct copy when the file compresses (COMPRESS_MIN_RATIO) and both ends have zstd. */
  compress?: boolean
}

/**
 * Starts the copy to every member that does not have the snapshot yet: directly,
 * or relayed (lib/transfer/relay.ts decides, measuring the first copy in auto mode).
 */
export function startCopy(o: CopyOptions): Uploads {
  const { path, sha256, size } = o.snapshot
  const running: Uploads[] = []
  let aborted = false
  // A view set later (when the copy phase shows) reaches the direct copies already running.
  const views = new (class extends Map<string, (text: string) => void> {
    override set(name: string, view: (text: string) => void) {
      for (const u of running) u.views.set(name, view)
      return super.set(name, view)
    }
  })()
  const settles = new Map<string, (r: CopyOutcome) => void>()
  const results = new Map<string, Promise<UploadDone>>()
  const todo = o.members.filter((m) => !m.inPlace)
  // Whether direct copies go zstd-compressed: asked of a sample of the file once, from the start (it
  // runs while the hosts check for room), and only when this machine has zstd and the file is here.
  const worth = o.compress === false || o.snapshot.host || todo.length === 0 || !localZstd()
    ? Promise.resolve(false)
    : sampleRatio(path, size).then((r) => r >= COMPRESS_MIN_RATIO, () => false)
  for (const m of todo) {
    const promise = new Promise<UploadDone>((resolve, reject) => settles.set(m.name, (r) => (r.ok ? resolve({ secs: r.secs, stdout: r.stdout ?? '', text: r.text, route: r.route }) : reject(r.error))))
    promise.catch(() => {})
    results.set(m.name, promise)
  }
  // A direct copy: over the sessions, one read of the file for all (each member's copy may be cut
  // alone: each.cut), compressed when the file is worth it; with `compress` (the relay's slow first
  // leg) compressed whatever the file, when both ends have zstd: over the sessions, else over an exec.
  const direct = async (members: CopyMember[], onBytes?: (name: string, bytes: number) => void, compress = false, each: DirectEach = {}): Promise<Map<string, CopyOutcome>> => {
    const got = new Map<string, CopyOutcome>()
    const stopped = () => new Map(members.map((m): [string, CopyOutcome] => [m.name, { ok: false, secs: 0, error: new Error('the copy was stopped') }]))
    if (aborted) return stopped()
    const zstd = compress && o.compress !== false && localZstd()
    // Whether every member's session can take files (it says so in its hello, which may be on its way).
    const sessions = zstd && (await Promise.all(members.map(async (m) => {
      const l = o.locks(m.name)
      return !!l && !l.closed && (await l.session.ready, l.session.canReceive === true)
    }))).every(Boolean)
    // Stopped while the sessions were asked (a preflight that failed takes the copy back).
    if (aborted) return stopped()
    if (!zstd || sessions) {
      const u = startUploads(path, sha256, size, members.map((m) => ({ name: m.name, host: o.pool.get(m.name), paths: m.paths, lock: o.locks(m.name), signal: each.cut?.(m.name) })), o.forks, onBytes, zstd ? () => Promise.resolve(true) : () => worth)
      running.push(u)
      for (const [name, view] of views) u.views.set(name, view)
      await Promise.all(members.map(async (m) => {
        const r: CopyOutcome = await u.results.get(m.name)!.then((d) => ({ ok: true, secs: d.secs, stdout: d.stdout, text: d.text, route: d.route }), (error) => ({ ok: false, secs: 0, error }))
        got.set(m.name, r)
        each.done?.(m.name, r)
      }))
      return got
    }
    const t0 = Date.now()
    const wire = new Map<string, number>()
    const outcomes = await uploadCompressed(path, sha256, size, members.map((m) => ({
      host: o.pool.get(m.name),
      paths: m.paths,
      onProgress: (bytes) => {
        wire.set(m.name, bytes)
        onBytes?.(m.name, bytes)
        views.get(m.name)?.(compressedProgress(bytes, size, t0))
      },
    }))).catch((error) => members.map(() => ({ ok: false as const, error })))
    const secs = (Date.now() - t0) / 1000
    members.forEach((m, j) => {
      const out = outcomes[j]
      got.set(m.name, out.ok ? { ok: true, secs, text: 'zstd-compressed on the way', stdout: out.result.stdout, route: { via: 'direct', sentBytes: wire.get(m.name) ?? 0, zstd: true } } : { ok: false, error: out.error, secs })
    })
    // A host without zstd read nothing: it gets the file plain.
    const plain = members.filter((m) => lacksZstd(got.get(m.name)?.error))
    if (plain.length) for (const [name, r] of await direct(plain, onBytes)) got.set(name, r)
    return got
  }
  const remote = o.snapshot.host ? { host: o.snapshot.host, path } : undefined
  const settleAll = (got: Map<string, CopyOutcome>) => { for (const [name, r] of got) settles.get(name)?.(r) }
  // Each member is settled as soon as its own copy is verified: its next step need not wait for the others.
  if (o.mode === 'off' || (todo.length < 2 && !remote)) void direct(todo, undefined, false, { done: (name, r) => settles.get(name)?.(r) }).then(settleAll)
  else {
    const asRelay = (m: CopyMember) => ({ ...m, upload: uploadScript(m.paths, sha256, size), snapshotPath: m.paths.snapshot })
    void relayCopy({
      mode: o.mode, todo: todo.map(asRelay), all: o.members.map(asRelay), size, hostOf: (name) => o.pool.get(name), forks: o.forks, remote,
      connect: o.connect,
      direct: (members, onBytes, compress, each) => direct(todo.filter((t) => members.some((m) => m.name === t.name)), onBytes, compress, each),
      onCut: o.onCut,
      quiet: o.quiet,
      local: async (m, file) => {
        const lock = o.locks(m.name)
        const script = sh`exec < ${file}
${m.upload}`
        await (lock ? lock.exec(script) : o.pool.get(m.name).exec(script))
      },
      settle: (name, r) => settles.get(name)?.(r),
      progress: (name, text) => views.get(name)?.(text),
      warn: o.warn,
    }).catch((error) => { for (const m of todo) settles.get(m.name)?.({ ok: false, error, secs: 0 }) })
  }
  return {
    results,
    views,
    abort: () => {
      aborted = true
      running.forEach((u) => u.abort())
    },
    compressed: worth,
  }
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
  remote: (name: string) => Promise<Pick<HeldLock, 'exec'>>,
): Promise<string[]> {
  uploads.abort()
  const left: string[] = []
  await Promise.all(members.map(async (m) => {
    const r = uploads.results.get(m.name)
    if (!r) return
    const out = await r.then((d) => d.stdout, (e: { stdout?: string; checkOutput?: string }) => `${e?.checkOutput ?? ''}${e?.stdout ?? ''}`)
    if (/^in-place=/m.test(out)) return
    try {
      // No output at all (a relayed hop, a copy cut off): whether it made the work dir is not known, so it goes only if empty.
      const undo = await (await remote(m.name)).exec(unUploadScript(m.paths, sha256, /^created-work=/m.test(out) || (out.trim() ? false : 'if-empty')), { timeoutMs: 30_000 })
      const kept = /^left=(.*)$/m.exec(undo.stdout)?.[1]
      if (kept) left.push(`${m.name}: ${kept}`)
    } catch (err) {
      left.push(`${m.name}: could not remove the copy in ${m.paths.work} (${formatError(err).split('\n')[0]})`)
    }
  }))
  return left
}

/**
 * The copy as one host's first step of the recovery pipeline: waits for that
 * host's copy (started alongside preflight, or started here), retries a failed
 * one over a new connection, and takes the run's lock again if the copy ended it.
 */
export function copyStep(plan: RecoveryPlan, pool: HostPool, o: RecoverOptions, forks: number, relock: (name: string, host: SshHost) => Promise<void>, started: Uploads | undefined, locks: (name: string) => HeldLock | undefined) {
  const size = plan.snapshot.size
  const remote = plan.snapshot.host
  const connect: ConnectOptions = { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: (w) => o.ui.warn(w), becomePassword: o.becomePassword }
  // A copy over the session that was cut (a lost copy, or auto's switch to a relay) ended that
  // session, and so the lock, on a connection that may live on: the run takes its lock again.
  const locked = async (name: string) => {
    if (locks(name)?.closed && !pool.get(name).closed) await relock(name, pool.get(name))
  }
  const uploads = started ?? startCopy({
    snapshot: plan.snapshot,
    members: plan.members.map((m) => ({ name: m.name, paths: m.paths, inPlace: m.resume.snapshotInPlace })),
    mode: relayMode(o.relay, remote),
    pool,
    locks,
    forks,
    connect,
    warn: (w) => o.ui.warn(w),
    compress: o.compress,
  })
  const inPlace = { text: 'same snapshot already on this host (sha256 matched)', skipped: true, facts: { via: 'in-place' } satisfies CopyRoute }
  return async (name: string, view: { update(text: string): void }): Promise<{ text: string; skipped?: boolean; facts?: CopyRoute }> => {
    const m = plan.members.find((x) => x.name === name)!
    const result = uploads.results.get(m.name)
    if (!result) return inPlace
    uploads.views.set(m.name, view.update)
    const done = await result.catch(async (first) => {
      // A snapshot that lies on a member only is never sent through this machine.
      if (remote) throw first
      return copyAgain(first, m, plan.snapshot.path, pool, {
        retries: o.retries ?? 2,
        // Compressed as the first copy was (one without zstd on the host goes plain).
        compress: uploads.compressed && (() => uploads.compressed!),
        size,
        sha256: plan.snapshot.sha256,
        relock: (host) => relock(m.name, host),
        locked: () => locked(m.name),
        connect,
        signal: o.signal,
        say: (text) => {
          view.update(text)
          o.ui.warn(`${m.name}: copy ${text}`)
        },
        onProgress: (bytes, t0, zstd) => view.update(zstd ? compressedProgress(bytes, size, t0) : progress(bytes, size, t0)),
      }).then((again): UploadDone => ({
        secs: again.secs,
        stdout: again.stdout,
        text: `direct copy, retried${again.compressed ? `; ${zstdSent(again.wire, size)}` : ''}`,
        route: { via: 'direct', sentBytes: again.wire, zstd: again.compressed, retried: true },
      }))
    })
    await locked(m.name)
    if (/^in-place=/m.test(done.stdout)) return inPlace
    // A compressed copy is proven by zstd's checksum on the host, of bytes whose sha256 was checked as they went (zstdStream).
    const proof = done.route?.zstd ? 'zstd checksum verified on host (sha256 checked as sent)' : 'sha256 verified on host'
    return { text: `${formatBytes(size)} in ${done.secs.toFixed(1)} s (${formatRate(size, done.secs)}), ${proof}${done.text ? `; ${done.text}` : ''}`, facts: done.route }
  }
}

/** --relay, --no-relay, or neither (auto); a snapshot on a member is always relayed. */
export function relayMode(relay: boolean | 'auto' | undefined, snapshotHost?: string): RelayMode {
  return snapshotHost || relay === true ? 'relay' : relay === false ? 'off' : 'auto'
}
