// --relay: the snapshot crosses the operator's link once (to one member, the
// source), and the source passes it on to every other member over the hosts'
// own network. Every target still runs the same upload script as a direct copy
// (part file, SHA-256 checked on that host, rename, `verified SHA size:inode:ctime`
// in its state file): a relayed copy is trusted exactly as far as a direct one.
//
// A hop is `dd FILE | ssh TARGET 'UPLOAD'` run on the source host by OpenSSH's
// client, over a fresh SSH connection of ours to the source that forwards a
// LendingAgent (agent.ts): the target's login key, one signature, for the length
// of the copy. The hop checks the target's host key against a known_hosts file
// written on the source for that hop, holding the key the operator's own
// connection verified (StrictHostKeyChecking=yes, no other file, ssh config
// ignored). Encrypted end to end by SSH: a snapshot holds every Kubernetes secret.
//
// A target the hop cannot serve (no ssh client on the source, a refused or
// unknown host key, login refused, not reachable, sudo needing a password,
// no key file to lend) falls back to a direct copy, per host, with the reason.
import { RescueError } from '../errors.ts'
import { formatBytes, formatRate } from '../task/format.ts'
import { sh, type Script } from '../shell/sh.ts'
import { SshHost, identities, type ConnectOptions, type SshTarget } from '../ssh/connection.ts'
import { blobType } from '../ssh/known-hosts.ts'
import { answerWithinMs } from '../ssh/upload.ts'
import { LendingAgent, lendableKeys } from './agent.ts'
import { settledWithin } from '../task/wait.ts'

/** The alias the hop's known_hosts file and ssh's HostKeyAlias share: the target's address plays no part in the check. */
export const HOP_KEY_ALIAS = 'etcd-rescue-relay-target'

/**
 * Auto mode: every member's copy starts at once, directly (a fast link loses no
 * time to the choice). What all of them together move is measured over
 * AUTO_PROBE_MS once the first host got 4 MiB and preflight's probes answered
 * (their own disk and CPU work could pass for a slow link): at AUTO_RELAY_BELOW (25 MB/s, about
 * 200 Mbit/s: slower than any datacenter network between hosts, with room for hosts
 * whose CPUs are busy while the copies start, as preflight runs alongside) or faster, or when
 * the copies are done by then, they go on; slower, all but the first are stopped
 * and relayed from the first host once it has the file.
 */
export const AUTO_RELAY_BELOW = 25e6
export const AUTO_PROBE_MS = 750
/** The probe starts after this much was handed to the channel (past SSH's 2 MiB window and the remote start). */
export const AUTO_PROBE_FROM = 4 << 20

/** The auto decision from the bytes the first copy moved in `ms` (or all of it, when it finished sooner). */
export function autoRelays(bytes: number, ms: number): boolean {
  return bytes / (Math.max(ms, 1) / 1000) < AUTO_RELAY_BELOW
}

export interface HopSpec {
  /** The file on the source host. */
  file: string
  /** The target as the operator reaches it (address, port, user). */
  target: Pick<SshTarget, 'host' | 'port' | 'user'>
  /** The target's host key blob, as the operator's connection verified it. */
  hostKey: Buffer
  /** The command the target runs (its upload script, wrapped in its become). */
  remote: Script
  connectTimeoutSeconds?: number
}

/** ssh options of a hop: this known_hosts only, this key only, nothing forwarded on, no prompts. */
export function hopSshOptions(connectTimeoutSeconds = 10): string[] {
  return [
    '-F', '/dev/null', '-T',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `HostKeyAlias=${HOP_KEY_ALIAS}`,
    '-o', 'CheckHostIP=no',
    '-o', 'UpdateHostKeys=no',
    '-o', 'ForwardAgent=no',
    '-o', 'ForwardX11=no',
    '-o', 'ClearAllForwardings=yes',
    '-o', 'PreferredAuthentications=publickey',
    '-o', 'PasswordAuthentication=no',
    '-o', 'KbdInteractiveAuthentication=no',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', `ConnectTimeout=${connectTimeoutSeconds}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'LogLevel=ERROR',
  ]
}

/** Exit code of a hop whose source host has no OpenSSH client. */
export const NO_SSH_CLIENT = 69

/** The script the source host runs for one hop (under its become; see withAgentBecome). */
export function hopScript(h: HopSpec): Script {
  const line = `${HOP_KEY_ALIAS} ${blobType(h.hostKey)} ${h.hostKey.toString('base64')}`
  const user = h.target.user ?? 'root'
  return sh`command -v ssh >/dev/null 2>&1 || { echo "etcd-rescue-relay: no OpenSSH client (ssh) on this host" >&2; exit ${NO_SSH_CLIENT}; }
kh=$(mktemp) || exit 70
trap 'rm -f "$kh"' EXIT
printf '%s\\n' ${line} > "$kh"
# GNU dd shows progress (coreutils 8.24+); any other reader (busybox, an older dd) sends the file without it.
# Its process group, so that a hop ended for making no progress can end what it started here.
read -r _ _ _ _ pg _ < /proc/$$/stat 2>/dev/null && echo "etcd-rescue-relay: pgid=$pg" >&2
# dd's progress in English whatever the host's locale: it is parsed (ddBytes).
if LC_ALL=C dd if=/dev/null of=/dev/null status=progress 2>/dev/null; then echo "etcd-rescue-relay: reader=dd" >&2; read_file() { LC_ALL=C dd if="$1" bs=128K status=progress; }; else read_file() { cat -- "$1"; }; fi
read_file ${h.file} | ssh ${hopSshOptions(h.connectTimeoutSeconds)} -o "UserKnownHostsFile=$kh" -p ${h.target.port} -l ${user} -- ${h.target.host} ${h.remote.text}`
}

/**
 * Runs `inner` on a host under its become (sudo -n), keeping the forwarded agent's socket:
 * sudo resets the environment, so the login shell passes SSH_AUTH_SOCK on by argument.
 * Without become, `inner` as it is. (A password-asking become is not a relay source.)
 */
export function withAgentBecome(t: Pick<SshTarget, 'become' | 'becomeUser'>, inner: Script): Script {
  if (!t.become) return sh`sh -c ${inner.text}`
  return sh`exec sudo -n -H -u ${t.becomeUser ?? 'root'} -- env "SSH_AUTH_SOCK=$SSH_AUTH_SOCK" sh -c ${inner.text}`
}

/** dd's progress lines ("123 bytes (…) copied, …"): the last byte count in a chunk of stderr. */
export function ddBytes(text: string): number | undefined {
  const all = [...text.matchAll(/(\d+) bytes(?: \([^)]*\))? copied/g)]
  return all.length ? Number(all[all.length - 1][1]) : undefined
}

/** stderr of a hop without dd's progress and record lines: what went wrong, if anything. */
export function hopComplaint(stderr: string): string {
  return stderr.split(/[\r\n]+/).map((l) => l.trim())
    .filter((l) => l && !/^\d+ bytes(?: \([^)]*\))? copied/.test(l) && !/^\d+\+\d+ records (in|out)$/.test(l) && !/^etcd-rescue-relay: (reader=dd|pgid=\d+)$/.test(l))
    .join('\n')
}

/** A hop's failure in words an operator can act on. */
export function hopReason(code: number | null, stderr: string, source: string, target: string): string {
  const text = hopComplaint(stderr)
  if (code === NO_SSH_CLIENT) return `${source} has no OpenSSH client (ssh)`
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/i.test(text)) {
    return `${target}'s host key as ${source} sees it is not the one verified from here: the hop refused it`
  }
  if (/Permission denied/i.test(text)) return `${target} refused the login from ${source} (${text.split('\n')[0]})`
  if (/Connection refused|timed out|No route to host|Could not resolve|Network is unreachable|Connection closed|Connection reset/i.test(text)) {
    return `${source} cannot reach ${target} over SSH (${text.split('\n')[0]})`
  }
  if (/sudo/i.test(text) && /password/i.test(text)) return `sudo on ${target} asks for a password`
  return `the hop from ${source} failed (exit ${code}${text ? `: ${text.split('\n').slice(-1)[0]}` : ''})`
}

/** Why a target cannot be relayed to before trying, or undefined when it can. */
export function relayBlocker(o: { source: SshHost; target: SshHost; becomePassword?: string; keys: number }): string | undefined {
  if (o.becomePassword !== undefined && o.source.target.become) return `sudo on ${o.source.name} takes a password (-K): the relay source needs sudo -n`
  if (o.becomePassword !== undefined && o.target.target.become) return `sudo on ${o.target.name} takes a password (-K): a hop cannot answer it`
  if (!o.target.hostKey) return `no verified host key of ${o.target.name}`
  if (o.keys === 0) return `no unencrypted ed25519 or RSA key file logs in to ${o.target.name} (an agent-only login is not lent)`
  return undefined
}

export interface HopOptions {
  source: SshHost
  target: SshHost
  /** The file on the source host. */
  file: string
  /** The target's upload script (unwrapped). */
  upload: Script
  connect: ConnectOptions
  onProgress?: (bytes: number) => void
  /** The file's size: how long the target may take to answer once it has it all (answerWithinMs). */
  size: number
  /** Tests: shorter limits than hopLimits gives. */
  limits?: Partial<HopLimits>
}

/**
 * How long a hop may go without moving: a target that takes nothing (its disk hangs)
 * or, once it has the whole file, does not answer, would otherwise hold the relay for
 * good, the connection itself still answering. `quietMs`: no byte for this long while
 * the source's dd shows progress (as a direct copy's stall limit alone, 60 s; dd
 * counts 128 KiB blocks, so a hop slower than about 2 KB/s would be taken for stuck).
 * `answerMs`: from the last byte to the target's answer (its hash: answerWithinMs).
 * `blindMs`: a source whose reader shows no progress (no GNU dd): the whole hop, at
 * 1 MB/s at worst, plus a minute.
 */
export interface HopLimits {
  quietMs: number
  answerMs: number
  blindMs: number
}

export function hopLimits(size: number): HopLimits {
  return { quietMs: 60_000, answerMs: answerWithinMs(size), blindMs: 60_000 + Math.ceil(size / 1e6) * 1000 }
}

export interface HopResult {
  signatures: number
}

/** One relayed copy; throws a RescueError whose message is the reason (the caller falls back to a direct copy). */
export async function hop(o: HopOptions): Promise<HopResult> {
  const keys = lendableKeys(identities(o.target.target, o.target.name))
  const blocker = relayBlocker({ source: o.source, target: o.target, becomePassword: o.connect.becomePassword, keys: keys.length })
  if (blocker) throw new RescueError(blocker, { where: o.target.name })
  const agent = new LendingAgent(keys, o.target.target.user ?? process.env.USER ?? 'root', o.target.hostKey, 1)
  let conn: SshHost | undefined
  try {
    conn = await SshHost.connect(`${o.source.name} (relay to ${o.target.name})`, o.source.target, { ...o.connect, forwardAgent: agent })
    const inner = hopScript({
      file: o.file,
      target: { host: o.target.target.host, port: o.target.target.port, user: o.target.target.user },
      hostKey: o.target.hostKey!,
      remote: o.target.wrap(o.upload),
      connectTimeoutSeconds: Math.ceil((o.connect.connectTimeoutMs ?? o.target.target.connectTimeoutMs ?? 10_000) / 1000),
    })
    const limits = { ...hopLimits(o.size), ...o.limits }
    let moved = 0
    let movedAt = Date.now()
    let seesProgress = false
    let stuck: string | undefined
    const via = conn
    let pgid = 0
    const watch = setInterval(() => {
      if (stuck) return
      const still = Date.now() - movedAt
      const [limit, why] = !seesProgress
        ? [limits.blindMs, `the relayed copy from ${o.source.name} to ${o.target.name} did not end within ${Math.round(limits.blindMs / 1000)} s (${o.source.name} shows no progress: no GNU dd)`]
        : moved >= o.size
          ? [limits.answerMs, `${o.target.name} took the whole file from ${o.source.name} but did not answer within ${Math.round(limits.answerMs / 1000)} s (its last writes or its hash of the file hang: a hung disk?)`]
          : [limits.quietMs, `${o.target.name} took no data from ${o.source.name} for ${Math.round(limits.quietMs / 1000)} s (a hung disk or a link gone silent)`]
      if (still < limit) return
      stuck = why
      // What the hop started on the source (dd, its ssh to the target) ends with it: sshd
      // leaves a closed session's processes running. Then the connection goes, bounded.
      void settledWithin(pgid > 1 ? via.killGroup(pgid) : Promise.resolve(), 10_000).then(() => via.close())
    }, Math.min(1000, limits.quietMs / 4, limits.answerMs / 4))
    watch.unref()
    const r = await conn.exec(withAgentBecome(o.source.target, inner), {
      noBecome: true,
      agentForward: true,
      allowFailure: true,
      onOutput: (text, stream) => {
        if (stream !== 'stderr') return
        if (/etcd-rescue-relay: reader=dd/.test(text)) seesProgress = true
        const pg = /etcd-rescue-relay: pgid=(\d+)/.exec(text)
        if (pg) pgid = Number(pg[1])
        const b = ddBytes(text)
        if (b !== undefined && b > moved) {
          moved = b
          movedAt = Date.now()
          o.onProgress?.(b)
        }
      },
    }).finally(() => clearInterval(watch))
    if (stuck) throw new RescueError(`the hop was ended: ${stuck}`, { where: o.target.name })
    if (r.code !== 0) {
      throw new RescueError(hopReason(r.code, r.stderr, o.source.name, o.target.name), { where: o.target.name })
    }
    // The hop's OpenSSH login on the target is a login shell there too: counted with the run's own.
    o.target.commandStarts++
    return { signatures: agent.signatures }
  } catch (err) {
    if (err instanceof RescueError) throw err
    throw new RescueError(`the relay connection to ${o.source.name} failed: ${(err as Error).message}`, { where: o.target.name, cause: err })
  } finally {
    // The hop's own connection to the source starts a login shell there: counted on the source.
    o.source.commandStarts += conn?.commandStarts ?? 0
    agent.close()
    conn?.close()
  }
}

export type RelayMode = 'relay' | 'auto' | 'off'

/** How a member got its copy, as the report gives it to machines (`text` says it to people). */
export interface CopyRoute {
  /** direct: sent from this machine; relayed: from another member; on-host: from the file already on that host (--snapshot HOST:PATH); in-place: it had it already. */
  via: 'direct' | 'relayed' | 'on-host' | 'in-place'
  /** Bytes this machine sent for it (the compressed stream's, with zstd). */
  sentBytes?: number
  zstd?: boolean
  /** The first copy failed; this is a retry's. */
  retried?: boolean
}

/** How one member's copy ended: in how many seconds, how (`text`, `route`), the upload script's output (`stdout`). */
export type CopyOutcome = { ok: boolean; secs: number; error?: unknown; text?: string; stdout?: string; route?: CopyRoute }

export interface DirectEach {
  cut?: (name: string) => AbortSignal | undefined
  done?: (name: string, got: CopyOutcome) => void
}

export interface RelayCopyOptions<M extends { name: string; upload: Script; snapshotPath: string; inPlace: boolean }> {
  mode: RelayMode
  /** Members to copy to (not those with the snapshot already in place), in inventory order. */
  todo: M[]
  /** Every member (the source may already hold the snapshot). */
  all: M[]
  size: number
  hostOf: (name: string) => SshHost
  connect: ConnectOptions
  forks: number
  /** The snapshot on a member (--snapshot HOST:PATH); absent: a local file, sent to the source first. */
  remote?: { host: string; path: string }
  /**
   * The direct copy (fanOutUpload, retries): resolves per member whether it succeeded and in how
   * many seconds. One read of the file feeds every member; `each.cut` stops one member's copy
   * while the others go on, and `each.done` hears of each member as it settles.
   */
  direct: (members: M[], onBytes?: (name: string, bytes: number) => void, compress?: boolean, each?: DirectEach) => Promise<Map<string, CopyOutcome>>
  /** A member's copy was cut (auto chose to relay): its session, and so its lock, ends; the caller takes the lock again. */
  onCut?: (name: string) => void
  /**
   * Auto: measure only once this settles (preflight's probes, which run alongside the copy
   * and read each member's data): the link is judged, not the hosts' own work.
   */
  quiet?: Promise<unknown>
  /** Runs a member's upload script with the source's file as stdin, on the source itself (--snapshot HOST:PATH). */
  local: (member: M, file: string) => Promise<void>
  settle: (name: string, r: CopyOutcome) => void
  progress: (name: string, text: string) => void
  warn: (text: string) => void
}

/**
 * The copy with --relay (or auto): the source first (direct, or locally from
 * HOST:PATH), then hops from it to the others, up to `forks` at once; a target a
 * hop cannot serve gets a direct copy (a HOST:PATH snapshot has none: that member fails).
 */
export async function relayCopy<M extends { name: string; upload: Script; snapshotPath: string; inPlace: boolean }>(o: RelayCopyOptions<M>): Promise<void> {
  const inTodo = new Set(o.todo.map((m) => m.name))
  // With --relay, a member that already holds this snapshot (an interrupted run) is the
  // source: nothing crosses the operator's link. Auto needs the first copy to measure.
  const sourceName = o.remote?.host ?? (o.mode === 'relay' ? o.all.find((m) => m.inPlace)?.name : undefined) ?? o.todo[0]?.name
  if (!sourceName) return
  const source = o.all.find((m) => m.name === sourceName)!
  let file: string
  let rest = o.todo.filter((m) => m.name !== sourceName)
  if (o.remote) {
    file = o.remote.path
    if (inTodo.has(sourceName)) {
      const t0 = Date.now()
      try {
        await o.local(source, o.remote.path)
        o.settle(sourceName, { ok: true, secs: (Date.now() - t0) / 1000, text: `copied on this host from ${o.remote.path}`, route: { via: 'on-host' } })
        file = source.snapshotPath
      } catch (error) {
        o.settle(sourceName, { ok: false, secs: 0, error })
      }
    } else file = source.snapshotPath
  } else {
    if (inTodo.has(sourceName)) {
      // The probe starts once AUTO_PROBE_FROM bytes reached the first host: before that, the
      // channel's window and the host's login shell and sudo starting are measured, not the link.
      const moved = new Map<string, number>()
      const total = () => [...moved.values()].reduce((a, b) => a + b, 0)
      let probe: { t: number; bytes: number; first: number } | undefined
      let startProbe!: () => void
      const nextProbe = () => new Promise<void>((resolve) => { startProbe = resolve })
      let probing = nextProbe()
      let reached = false
      let quiet = !o.quiet
      const maybeProbe = () => {
        if (probe || !reached || !quiet) return
        probe = { t: Date.now(), bytes: total(), first: moved.get(sourceName) ?? 0 }
        startProbe()
      }
      void o.quiet?.then(() => { quiet = true; maybeProbe() }, () => { quiet = true; maybeProbe() })
      const onBytes = (name: string, bytes: number) => {
        moved.set(name, bytes)
        if (name === sourceName && bytes >= AUTO_PROBE_FROM) reached = true
        maybeProbe()
      }
      // Explicit --relay: the slow leg is compressed (zstd, when both ends have it). Auto
      // decides from these copies' speed, so they go as any direct copy goes (compressed when
      // the file is worth it: the probe then counts bytes on the wire, which is what the link
      // carries), all from one read of the file: the others' copies can be cut while the
      // first one's goes on.
      let firstCopy: Promise<CopyOutcome>
      let all: Promise<Map<string, CopyOutcome>> | undefined
      const cut = new AbortController()
      // Each other member is settled as soon as its own copy is verified (its next step may start).
      const settled = new Set<string>()
      if (o.mode === 'auto') {
        let firstDone!: (got: CopyOutcome) => void
        firstCopy = new Promise<CopyOutcome>((resolve) => { firstDone = resolve })
        all = o.direct([source, ...rest], onBytes, false, {
          cut: (name) => (name === sourceName ? undefined : cut.signal),
          done: (name, got) => {
            if (name === sourceName) firstDone(got)
            else if (got.ok) {
              settled.add(name)
              o.settle(name, got)
            }
          },
        })
        // A copy that ended without settling each member (it cannot, but never hang on it).
        void all.then((got) => firstDone(got.get(sourceName) ?? { ok: false, secs: 0, error: new Error('not copied') }))
      } else firstCopy = o.direct([source], onBytes, true).then((got) => got.get(sourceName)!)
      if (all) {
        let early: 'probe' | 'done'
        let ms = 0
        let bytes = 0
        for (let window = AUTO_PROBE_MS; ; window = AUTO_PROBE_MS * 4) {
          let timer: NodeJS.Timeout | undefined
          early = await Promise.race([
            probing.then(() => new Promise<'probe'>((resolve) => { timer = setTimeout(() => resolve('probe'), window) })),
            firstCopy.then(() => 'done' as const),
          ])
          clearTimeout(timer)
          ms = probe ? Date.now() - probe.t : 0
          bytes = probe ? total() - probe.bytes : 0
          // Not one chunk more for the first host (each chunk of the one read reaches it first):
          // another host holds the shared read (a hung disk, which the stall cut ends), or a slow
          // link's full channels are draining. Measured again from the next chunk over a longer
          // window, which spans a slow link's pauses and leaves out a stall's.
          if (early === 'done' || (moved.get(sourceName) ?? 0) > probe!.first) break
          probe = undefined
          probing = nextProbe()
        }
        // Copies done before the probe ended are ones the link moves in under a second: direct.
        if (early === 'done' || !autoRelays(bytes, ms)) {
          o.settle(sourceName, await firstCopy)
          return settleAll(o, rest.filter((m) => !settled.has(m.name)), await all)
        }
        o.warn(`relay (auto): the copies ran at ${formatRate(bytes, ms / 1000)} in all, below ${AUTO_RELAY_BELOW / 1e6} MB/s: the others get it from ${sourceName}`)
        cut.abort()
        // A copy that already finished is kept; the others end, and take their locks again.
        rest = rest.filter((m) => !settled.has(m.name))
        for (const m of rest) o.onCut?.(m.name)
      }
      const first = await firstCopy
      o.settle(sourceName, first)
      if (!first.ok) {
        o.warn(`relay: the copy to ${sourceName} failed; copying to the other members directly`)
        return settleAll(o, rest, await o.direct(rest))
      }
    }
    file = source.snapshotPath
  }
  rest = rest.filter((m) => m.name !== sourceName)
  const fallback: M[] = []
  const queue = [...rest]
  const workers = Array.from({ length: Math.max(1, Math.min(o.forks, queue.length)) }, async () => {
    for (let m = queue.shift(); m; m = queue.shift()) {
      const target = m
      const t0 = Date.now()
      o.progress(target.name, `relaying from ${sourceName}`)
      try {
        await hop({
          source: o.hostOf(sourceName), target: o.hostOf(target.name), file, upload: target.upload, connect: o.connect, size: o.size,
          onProgress: (bytes) => {
            const secs = (Date.now() - t0) / 1000
            o.progress(target.name, `from ${sourceName}: ${formatBytes(bytes)} of ${formatBytes(o.size)} (${Math.floor((bytes / o.size) * 100)}%), ${formatRate(bytes, secs)}`)
          },
        })
        const secs = (Date.now() - t0) / 1000
        o.settle(target.name, { ok: true, secs, text: `relayed from ${sourceName}`, route: { via: 'relayed' } })
      } catch (error) {
        const reason = (error as Error).message
        if (o.remote) {
          o.settle(target.name, { ok: false, secs: 0, error: new RescueError(`cannot relay the snapshot from ${sourceName}: ${reason}`, { where: target.name, hint: `The snapshot is on ${sourceName} only and is not sent through this machine: fix the cause, or copy it here and pass the local file.` }) })
        } else {
          o.warn(`${target.name}: not relayed (${reason}): copying it directly`)
          fallback.push(target)
        }
      }
    }
  })
  await Promise.all(workers)
  if (fallback.length) settleAll(o, fallback, await o.direct(fallback), 'direct copy: not relayed')
}

function settleAll<M extends { name: string }>(o: { settle: RelayCopyOptions<never>['settle'] }, members: M[], got: Map<string, CopyOutcome>, text?: string) {
  for (const m of members) {
    const r = got.get(m.name) ?? { ok: false, secs: 0, error: new Error('not copied') }
    // A direct copy's own note (zstd) stays beside why it was not relayed.
    o.settle(m.name, { ...r, text: text ? (r.text ? `${text}; ${r.text}` : text) : r.text })
  }
}

