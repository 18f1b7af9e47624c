// The recovery, in the order of the op-guide, with nothing destructive until every
// host passed preflight: check the snapshot, connect and probe every host, plan,
// (confirm); then per member copy, restore beside the data dir, stop, swap the
// restored data in, start (lib/task/pipeline.ts); wait for quorum, verify.
import { loadInventory, membersOf, type Member, type MemberContext } from '../inventory/members.ts'
import type { SnapshotInfo } from '../etcd/snapshot.ts'
import { tlsFor } from '../etcd/tls.ts'
import { ExitCode, RescueError, formatError } from '../errors.ts'
import { RemoteCommandError } from '../ssh/errors.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { Script } from '../shell/sh.ts'
import { parseFacts, probeScript, type HostFacts } from '../plan/facts.ts'
import { clusterProblems, hostProblems } from '../plan/checks.ts'
import { memberPaths } from '../plan/paths.ts'
import { buildPlan, memberPorts, timeStamp, type RecoveryPlan } from '../plan/recovery.ts'
import { HostPool, connectAll, startConnecting } from '../task/hosts.ts'
import { Journal } from '../task/journal.ts'
import { acquireLock, acquireLockOrTakeOver, type HeldLock } from './lock.ts'
import { runPhase, type PhaseResult } from '../task/phase.ts'
import { runPipeline, type Step } from '../task/pipeline.ts'
import { formatBytes } from '../task/format.ts'
import type { Ui } from '../task/ui.ts'
import { verifyCluster, type Check, type RemoteHost } from './verify.ts'
import { parseHeld, type MemberData } from '../plan/survivor-read.ts'
import { survivorGuard, type SurvivorReport } from '../plan/survivor-guard.ts'
import { kubernetesAdvice } from '../plan/kubernetes.ts'
import { unitHold } from '../plan/systemd.ts'
import { ownPeakRssBytes } from '../task/rss.ts'
import { heldScriptFor, snapshotFromSurvivors, type FromSurvivorsResult } from './survivors.ts'
import { joinScripts } from '../shell/sh.ts'
import { Interrupted, checkpoint } from '../task/interrupt.ts'
import { hostStates } from './host-state.ts'
import { copyStep, relayMode, startCopy, takeBackUploads, type Uploads } from './copy.ts'
import { checkSnapshot, snapshotSource } from '../transfer/remote-snapshot.ts'
import { settledWithin } from '../task/wait.ts'
import { waitForQuorum } from './quorum.ts'

export interface RecoverOptions {
  inventory: string
  /** The snapshot to restore; absent with fromSurvivors. */
  snapshot?: string
  /** Restore the snapshot even when a member holds newer revisions (they are lost, and the result says so). */
  acceptDataLoss?: boolean
  /** No snapshot given: take one from the member holding the freshest data and recover from it. */
  fromSurvivors?: boolean
  /** With fromSurvivors: where that snapshot is kept. Default: the current directory. */
  backupDir?: string
  /** Inventory group of the members. Default etcd. */
  group?: string
  /** -e, -u, --private-key, ssh config and ansible.cfg. Default: the inventory alone. */
  memberContext?: MemberContext
  /** Plan and print, change nothing. */
  check?: boolean
  /** Hosts worked on at once. Default: all members. */
  forks?: number
  token?: string
  bumpRevision?: number
  skipHashCheck?: boolean
  /** How long to wait for a healthy quorum. Default 120 s. */
  timeoutMs?: number
  /** The base of each restore, stop, swap or start's limit on a host (the restore adds 1 s per 5 MB). Default 120 s. */
  stepTimeoutMs?: number
  /** SSH handshake timeout per host, over any the inventory or configs set. Default: theirs, else 10 s. */
  connectTimeoutMs?: number
  /** known_hosts for hosts whose inventory names none. Default ~/.ssh/known_hosts. */
  knownHosts?: string
  /** sudo password for hosts with ansible_become (-K). Default: none, sudo -n. Never logged. */
  becomePassword?: string
  /** Show remote commands and their output. */
  verbose?: boolean
  /** How long to wait for another run's lock on a member. Default 0: refuse at once (exit 3). */
  waitLockSeconds?: number
  ui: Ui
  /** Asked once the plan is ready and before anything changes; false aborts (exit 2). */
  confirm?: (plan: RecoveryPlan) => Promise<boolean>
  /** Tests: stop right after this phase, as an interrupted run would. */
  stopAfter?: 'copy' | 'restore' | 'stop' | 'swap' | 'start'
  /**
   * Send the snapshot to one member and on from there over the hosts' own network
   * (lib/transfer/relay.ts). Default 'auto': relay when the copies, started at once,
   * move less than 25 MB/s in all.
   */
  relay?: boolean | 'auto'
  /** false: direct copies are never zstd-compressed (--no-compress). Default: when the snapshot compresses and both ends have zstd. */
  compress?: boolean
  /** Further attempts of a host's copy that failed (new connection if the old one died). Default 2. */
  retries?: number
  /** Aborted: start no new step, let running ones finish, stop with exit 130 (Ctrl-C). */
  signal?: AbortSignal
}

export interface RecoverResult {
  exitCode: number
  result: 'recovered' | 'checked' | 'verification-failed' | 'failed' | 'refused' | 'interrupted'
  message: string
  plan?: RecoveryPlan
  snapshot?: SnapshotInfo & { revision?: number }
  /** What each member held against the snapshot, and what was given up (issue 11). */
  survivors?: SurvivorReport
  /** With fromSurvivors: which member was chosen and why. */
  fromSurvivors?: FromSurvivorsResult
  members: Member[]
  journal: Journal
  checks: Check[]
  /** From the first change to a verified cluster. */
  recoverySeconds?: number
  totalSeconds: number
  warnings: string[]
  /** Remote commands started per host (each one a login shell there). */
  remoteCommands: Record<string, number>
  /** Sequential round trips per host: commands started plus steps sent on the host's session. */
  roundTrips: Record<string, number>
  /** This process's peak resident memory, bytes. */
  peakRssBytes: number
}

class PhaseFailed extends RescueError {}

/** Preflight's answer from each host is waited for `baseMs`, plus 1 s per 20 MB of snapshot. */
export const PREFLIGHT = { baseMs: 60_000 }

/**
 * A changing step's limit on a host (stepLimitMs): `baseMs`, and for the restore 1 s
 * more per `restoreBytesPerSecond` (the closing step after the proof, its mark and the
 * copied snapshot's removal, gets `baseMs` too: a hung host then warns, not holds a
 * finished run); `markMs` for the hold's removal beside the quorum wait.
 */
export const STEP_LIMIT = { baseMs: 120_000, restoreBytesPerSecond: 5e6, markMs: 30_000 }

export type ChangingStep = 'restore' | 'stop' | 'swap' | 'start'

/**
 * The most a changing step may run on a host before it is given up (its process
 * group sent TERM, then KILL) and the run fails there, naming host and step: a
 * hung disk or a wedged systemd must not hold a recovery for ever. Stop, swap
 * and start are a bounded stop, renames and systemctl calls: the base, 2 min.
 * The restore also reads and writes the whole snapshot: the base plus 1 s per
 * 5 MB of it (about 5.5 min for 1 GB). `baseMs` (--step-timeout) replaces the
 * base only, so a longer one never shortens a large snapshot's restore.
 */
export function stepLimitMs(step: ChangingStep, snapshotBytes: number, baseMs = STEP_LIMIT.baseMs): number {
  return baseMs + (step === 'restore' ? Math.ceil(snapshotBytes / STEP_LIMIT.restoreBytesPerSecond) * 1000 : 0)
}

export async function recover(o: RecoverOptions): Promise<RecoverResult> {
  const journal = new Journal()
  const pool = new HostPool()
  const warnings: string[] = []
  const warn = (w: string) => {
    warnings.push(w)
    o.ui.warn(w)
  }
  const res: RecoverResult = { exitCode: ExitCode.FAILED, result: 'failed', message: '', members: [], journal, checks: [], totalSeconds: 0, warnings, remoteCommands: {}, roundTrips: {}, peakRssBytes: 0 }
  const locks: HeldLock[] = []
  const lockOf = new Map<string, HeldLock>()
  // Every step after the lock is a message on the lock's own session (one login shell per host for the run).
  const remote = (name: string): RemoteHost => {
    const lock = lockOf.get(name)
    if (!lock) throw new Error(`no session on ${name}`)
    return lock
  }
  // A copy retried over a new connection, or cut for a relay, takes this run's own lock over
  // from the session that ended. One at a time per member: two takeovers would end each other.
  const relocking = new Map<string, Promise<void>>()
  const relock = (name: string, host: SshHost): Promise<void> => {
    const before = relocking.get(name) ?? Promise.resolve()
    const next = before.catch(() => {}).then(async () => {
      if (lockOf.get(name) && !lockOf.get(name)!.closed) return
      const m = res.members.find((x) => x.name === name)!
      const lock = await acquireLock(host, m.dataDir, { waitSeconds: 0, takeover: lockOf.get(name)?.owner })
      locks.push(lock)
      lockOf.set(name, lock)
    })
    relocking.set(name, next)
    return next
  }
  // The copy, started while preflight runs; taken back if the run ends before any change.
  let early: { uploads: Uploads; members: Array<{ name: string; paths: ReturnType<typeof memberPaths> }>; sha256: string } | undefined
  const finish = async (r: Partial<RecoverResult>): Promise<RecoverResult> => {
    if (early && changesStarted === undefined) {
      const left = await takeBackUploads(early.uploads, early.members, early.sha256, async (name) => {
        // A copy stopped half way ended its session: the run takes its own lock again to clean up.
        if (lockOf.get(name)?.closed) await relock(name, pool.get(name))
        return remote(name)
      })
      if (left.length) warn(`the copy made alongside preflight could not all be taken back:\n${left.map((l) => `  ${l}`).join('\n')}`)
    }
    // A lock being taken again (a session ended under a stuck command) is released with the
    // others once it is held; bounded, as taking it waits on the host.
    await settledWithin(Promise.allSettled(relocking.values()), 20_000)
    await Promise.all(locks.map((l) => l.release().catch(() => undefined)))
    res.remoteCommands = Object.fromEntries([...pool.hosts].map(([name, h]) => [name, h.commandStarts]))
    res.roundTrips = Object.fromEntries([...pool.hosts].map(([name, h]) => [name, h.commandStarts + locks.filter((l) => l.name === name).reduce((n, l) => n + l.steps, 0)]))
    res.peakRssBytes = ownPeakRssBytes()
    pool.closeAll()
    Object.assign(res, r)
    res.totalSeconds = (Date.now() - journal.startedAt.getTime()) / 1000
    return res
  }
  let changesStarted: number | undefined
  // A systemd member's hold drop-in, inert once its start step removed the hold file, is
  // removed right after that start, beside the quorum wait (which mostly waits for etcd's
  // first election); the run waits for each before it ends.
  const disarming = new Map<string, Promise<void>>()
  const disarm = (m: RecoveryPlan['members'][number]) => {
    if (m.scripts.disarm && !disarming.has(m.name)) disarming.set(m.name, disarmHold(m, remote, o, warn))
  }
  const disarmed = () => Promise.all(disarming.values())

  try {
    // 1. Inputs: inventory and snapshot. Nothing has been contacted yet.
    const inventory = loadInventory(o.inventory)
    const set = membersOf(inventory, o.group ?? 'etcd', o.memberContext)
    set.warnings.forEach(warn)
    const members = set.members
    res.members = members
    let snapshotFile = o.snapshot
    let skipHashCheck = o.skipHashCheck
    if (o.fromSurvivors) {
      // The freshest member's data becomes the snapshot; then the normal recovery, checks and all.
      const got = await snapshotFromSurvivors({ members, ui: o.ui, journal, forks: o.forks ?? members.length, backupDir: o.backupDir, chooseOnly: o.check, verbose: o.verbose, waitLockSeconds: o.waitLockSeconds, onWarning: warn, connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: warn, becomePassword: o.becomePassword } })
      res.fromSurvivors = got
      if (!got.snapshot) return finish({ exitCode: ExitCode.OK, result: 'checked', message: `--from-survivors would recover from ${got.choice.chosen.member}; nothing was changed (--check)` })
      snapshotFile = got.snapshot.path
      skipHashCheck = skipHashCheck || got.snapshot.raw
    }
    if (!snapshotFile) throw new RescueError('no snapshot: pass --snapshot FILE or --from-survivors', { exitCode: ExitCode.BAD_INPUT })
    // Its revision, read from the file itself (here, or on the member holding it with
    // --snapshot HOST:PATH): the survivors are compared with it before anything changes.
    const forks = o.forks ?? members.length
    const connectOptions = { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: warn, becomePassword: o.becomePassword }
    // A snapshot on this machine is checked (hashed) while the SSH handshakes go on, and each
    // host's login shell starts for the lock's command, which waits for its script: nothing
    // runs on a host before the check passed (SshHost.startStandby). One on a member is
    // checked over a connection of its own first.
    const started = isLocal(snapshotFile, members) ? startConnecting(members, pool, connectOptions, forks) : undefined
    const { snapshot, point } = await checkSnapshot(snapshotFile, members, { skipHashCheck, connect: connectOptions })
    res.snapshot = snapshot
    o.ui.info(`snapshot ${snapshot.host ? `${snapshot.host}:` : ''}${snapshot.path}: ${formatBytes(snapshot.size)}, sha256 ${snapshot.sha256.slice(0, 16)}…${snapshot.hasTrailer ? ', integrity trailer verified' : ', no trailer (--skip-hash-check)'}`)

    // 2. Preflight, read-only, on every host at once.
    const conn = await connectAll(members, pool, o.ui, journal, connectOptions, forks, started)
    if (conn.failed.length) return finish(refused(conn, 'cannot connect'))
    // The probe runs under the lock, in the same remote command: one login shell for both,
    // and what it reads is what this run will act on (no other run between the two).
    // Token and stamp are not known yet; the probe needs only the work dir and snapshot path.
    const probeWhere = (m: Member) => memberPaths(m.dataDir, snapshot.sha256, '', '', false)
    const probeOf = (m: Member) => {
      const where = probeWhere(m)
      return joinScripts([probeScript({
        dataDir: m.dataDir,
        binDir: m.binDir,
        work: where.work,
        snapshot: where.snapshot,
        snapshotSize: snapshot.size,
        snapshotSha: snapshot.sha256,
        ports: memberPorts(m),
        service: m.service,
        serviceName: m.serviceName,
        etcdUser: m.etcdUser,
        tls: tlsFor(m),
        // What the member's data dir holds is read in the same round trip (plan/survivor-read.ts).
      }), heldScriptFor(m)])
    }
    const probeOutput = new Map<string, HeldLock['thenOutput']>()
    const locked = await runPhase(o.ui, journal, 'lock', 'Lock each member against a second run', members.map((m) => ({
      host: m.name,
      run: async (view) => {
        const then = probeOf(m)
        if (o.verbose) o.ui.info(`[${m.name}] preflight (under the lock) $ ${then.text.trim().split('\n').join(`\n[${m.name}]   `)}`)
        const lock = await acquireLockOrTakeOver(pool.get(m.name), m.dataDir, {
          waitSeconds: o.waitLockSeconds ?? 0,
          onTakeover: (holder) => warn(`${m.name}: taking over the lock of an earlier run from this machine that is gone (its connection dropped; the host has not noticed yet): ${holder}`),
          onWait: (holder) => view.update(`waiting for another run: ${holder}`),
          onStale: (holder) => warn(`${m.name}: taking over the lock of a run that ended without releasing it (${holder})`),
          then,
        })
        locks.push(lock)
        probeOutput.set(m.name, lock.thenOutput)
        lockOf.set(m.name, lock)
        return { value: null, text: 'locked' }
      },
    })), forks)
    if (locked.failed.length) return finish(refused(locked, 'cannot lock'))
    // Every member is locked: the copy starts now, alongside the checks (not for --check, nor
    // before a person confirmed). Each host's upload checks room and an earlier copy for itself.
    if (!o.check && !o.confirm) {
      const targets = members.map((m) => ({ name: m.name, paths: probeWhere(m) }))
      early = {
        members: targets,
        sha256: snapshot.sha256,
        uploads: startCopy({
          snapshot,
          // Whether a host has the file already is its upload's own first check here (preflight has not answered).
          members: targets.map((t) => ({ ...t, inPlace: false })),
          mode: relayMode(o.relay, snapshot.host),
          compress: o.compress,
          pool,
          locks: (name) => lockOf.get(name),
          forks,
          connect: { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, onWarning: warn, becomePassword: o.becomePassword },
          warn,
          // Cut for a relay: the lock is taken again as soon as that session has ended (after its
          // preflight probe answered), not after the hop, so no member goes unlocked meanwhile.
          onCut: (name) => {
            const lock = lockOf.get(name)
            if (lock) void lock.thenOutput.catch(() => undefined).then(() => relock(name, pool.get(name))).catch(() => undefined)
          },
          // The probes' own work (disk, CPU) could pass for a slow link: auto judges it after them.
          quiet: Promise.all(locks.map((l) => l.thenOutput.catch(() => undefined))),
        }),
      }
    }
    const held = new Map<string, MemberData>()
    const probed = await runPhase(o.ui, journal, 'preflight', 'Preflight checks (read-only)', members.map((m) => ({
      host: m.name,
      run: async () => {
        const where = probeWhere(m)
        // Bounded: a host whose checks hang (a hung disk) is named, not waited for forever. A
        // snapshot already on the host with no record of its check is hashed there: time for that.
        const limitMs = PREFLIGHT.baseMs + Math.ceil(snapshot.size / 20e6) * 1000
        let timer: NodeJS.Timeout | undefined
        const { stdout: out, code } = await Promise.race([
          probeOutput.get(m.name)!,
          new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => {
              const why = `its preflight checks gave no answer within ${Math.round(limitMs / 1000)} s: SSH answered and the lock was taken, but the checks hang on this host (a hung disk?)`
              lockOf.get(m.name)?.session.end(why)
              reject(new RescueError(why, { where: m.name, exitCode: ExitCode.PREFLIGHT }))
            }, limitMs)
          }),
        ]).finally(() => clearTimeout(timer)).catch((err) => {
          // Its session ended on this side only (this limit, or its loop never started): the loop
          // on the host may still hold the lock with a stuck command. Taking the lock over ends
          // them; finish() waits for that and releases it.
          if (lockOf.get(m.name)?.closed) void relock(m.name, pool.get(m.name)).catch(() => undefined)
          throw err
        })
        if (code !== 0) throw new RescueError(`the preflight probe failed (exit code ${code})${out.trim() ? `: ${out.trim().split('\n').slice(-3).join(' | ')}` : ''}`, { where: m.name, exitCode: ExitCode.PREFLIGHT })
        if (o.verbose && out.trim()) o.ui.info(`[${m.name}] preflight > ${out.trim().split('\n').join(`\n[${m.name}] preflight > `)}`)
        const facts = parseFacts(out, m.name, where.state)
        held.set(m.name, parseHeld(out, m.name))
        const problems = hostProblems({ member: m, facts, snapshotSize: snapshot.size, snapshotSha: snapshot.sha256, bumpRevision: o.bumpRevision })
        if (problems.length) throw new RescueError(problems.join(problems.some((p) => p.includes('\n')) ? '\n' : '; '), { where: m.name })
        if (facts.unit?.held) warn(`${m.name}: ${m.serviceName} is held by an earlier etcd-rescue run that ended between stop and start (${unitHold(m.serviceName).file} exists): while that run's drop-in is loaded every start of it fails; this run lifts the hold when it starts the member (to start it by hand instead, remove that file)`)
        return { value: facts, text: describeFacts(facts) }
      },
    })), forks)
    if (probed.failed.length) return finish(refused(probed, 'preflight failed'))
    const facts = probed.values as Map<string, HostFacts>
    const across = clusterProblems(members.map((m) => ({ name: m.name, version: facts.get(m.name)?.version?.text })))
    if (across.length) return finish({ exitCode: ExitCode.PREFLIGHT, result: 'refused', message: `preflight failed: ${across.join(' ')}\nNothing was changed.` })
    // Never roll back past a survivor's data: refused (exit 3) unless --accept-data-loss.
    // A store that never had a key is at revision 1 in etcd while its db's key bucket is empty
    // (snapshot status says 0): compare what etcd itself would report.
    const snapshotRevision = Math.max(point.revision, 1)
    const guard = survivorGuard(members.map((m) => held.get(m.name)!), { revision: snapshotRevision, raftIndex: point.consistentIndex }, Boolean(o.acceptDataLoss))
    res.survivors = guard.report
    res.snapshot = { ...snapshot, revision: snapshotRevision }
    o.ui.info(guard.text)
    guard.report.warnings.forEach(warn)
    if (guard.refusal) throw guard.refusal
    const k8s = kubernetesAdvice(inventory, o.bumpRevision)
    if (k8s) warn(k8s)

    // 3. The plan, as data.
    const plan = buildPlan(members, facts, snapshot, { token: o.token, bumpRevision: o.bumpRevision, stamp: timeStamp() })
    res.plan = plan
    if (plan.tokenSource === 'resumed') o.ui.info(`resuming an interrupted recovery of this snapshot (token ${plan.token})`)
    checkpoint(o.signal, 'preflight')
    if (o.check) return finish({ exitCode: ExitCode.OK, result: 'checked', message: 'every check passed; nothing was changed (--check)' })
    if (o.confirm && !(await o.confirm(plan))) return finish({ exitCode: ExitCode.BAD_INPUT, result: 'refused', message: 'not confirmed; nothing was changed' })

    // 4. Changes begin.
    checkpoint(o.signal, 'confirmation')
    changesStarted = Date.now()
    // Each member's steps, as data, run by one loop per host: a host goes on as soon as its own
    // previous step is done. The restore writes beside the data dir only, so it runs while the
    // old etcd still does; the gates are where correctness needs every host: no old member is
    // stopped until every member holds its restored data, and no member starts until every old
    // member is stopped (a restored member must never meet the old cluster).
    const byName = new Map(plan.members.map((m) => [m.name, m]))
    const limit = (step: ChangingStep) => stepLimitMs(step, snapshot.size, o.stepTimeoutMs)
    const copy = copyStep(plan, pool, o, forks, relock, early?.uploads, (name) => lockOf.get(name))
    const steps: Step[] = [
      { key: 'copy', title: 'copy the snapshot', run: copy },
      {
        key: 'restore',
        title: 'restore beside the data dir',
        run: async (name) => {
          const m = byName.get(name)!
          const r = await exec(remote(name), m.scripts.restore, o, 'restore', limit('restore'))
          if (field(r.stdout, 'restore') === 'already-done') return { text: 'already restored by an earlier run', skipped: true }
          const armFailed = field(r.stdout, 'hold.arm-failed')
          const hold = field(r.stdout, 'hold.armed') ? `; ${m.unit}'s hold armed (its drop-in ${unitHold(m.unit!).dropIn}, inert until the stop)` : armFailed !== undefined ? `; ${m.unit}'s hold not armed (${armFailed || 'no reason given'}): the stop step tries again` : ''
          const stale = fields(r.stdout, 'stale.removed')
          const removed = stale.length ? `; removed ${stale.length === 1 ? 'the restore dir' : `${stale.length} restore dirs`} an earlier run left (${stale.join(', ')})` : ''
          return { text: `restored rev ${snapshotRevision}, ID ${m.memberIdHex}, into ${m.paths.restoreTmp}; old data untouched${hold}${removed}` }
        },
      },
      {
        key: 'stop',
        title: 'stop the old member',
        gate: { after: 'restore', text: 'every member holds its restored data' },
        run: async (name) => {
          const m = byName.get(name)!
          if (m.resume.alreadyRestored && m.resume.running.length) return { text: 'already running restored data: left alone', skipped: true }
          const r = await exec(remote(name), m.scripts.stop, o, 'stop', limit('stop'))
          return { text: stopText(m.unit, field(r.stdout, 'unit.stopped'), field(r.stdout, 'stopped')) }
        },
      },
      {
        key: 'swap',
        title: 'set old data aside, move restored data in',
        run: async (name) => {
          const m = byName.get(name)!
          const r = await exec(remote(name), m.scripts.swap, o, 'swap', limit('swap'))
          if (field(r.stdout, 'swap') === 'already-done') return { text: 'restored data already in place', skipped: true }
          const aside = field(r.stdout, 'set-aside')
          return { text: `restored data in ${m.paths.dataDir}; ${aside ? `old data → ${aside}` : 'no old data to set aside'}` }
        },
      },
      {
        key: 'start',
        title: 'start etcd',
        gate: { after: 'stop', text: 'every old member is stopped' },
        run: async (name) => {
          const r = await exec(remote(name), byName.get(name)!.scripts.start, o, 'start', limit('start'))
          disarm(byName.get(name)!)
          const started = field(r.stdout, 'started') ?? 'started'
          return { text: started, skipped: started.startsWith('already-running') }
        },
      },
    ]
    const piped = await runPipeline(o.ui, journal, 'Recover each member', plan.members.map((m) => m.name), steps, { forks, signal: o.signal, until: o.stopAfter })
    if (piped.failed.length) {
      // Each failure in one line, and what to do about it (the error's hint) under it.
      throw new PhaseFailed(piped.failed.map((f) => {
        const hint = f.error instanceof RescueError && f.error.hint ? `\n  hint: ${f.error.hint}` : ''
        return `${f.step} failed on ${f.host} (${formatError(f.error).split('\n')[0]})${hint}`
      }).join('\n'))
    }
    if (piped.interrupted) throw new Interrupted(piped.allThrough ?? 'preflight')
    if (o.stopAfter) throw new PhaseFailed(`stopped after ${o.stopAfter}, as asked (stopAfter)`)

    // 5. Quorum, then proof.
    const quorum = await waitForQuorum(plan, { get: remote }, o, journal)
    checkpoint(o.signal, 'start')
    // A majority healthy is a quorum: verification then names the members that lag (exit 4).
    const lagging = quorum.failed.map((f) => formatError(f.error))
    if (plan.members.length - quorum.failed.length <= plan.members.length / 2) throw new PhaseFailed(`no healthy quorum within ${(o.timeoutMs ?? 120_000) / 1000} s: ${quorum.failed.map((f) => `${f.host}: ${formatError(f.error)}`).join('\n')}`)
    const verified = await runPhase(o.ui, journal, 'verify', 'Verify the recovered cluster', [{
      host: 'cluster',
      run: async () => {
        const { checks } = await verifyCluster(plan, new Map(plan.members.map((m) => [m.name, remote(m.name)])), snapshotRevision, quorum.view)
        const failed = checks.filter((c) => !c.ok)
        if (failed.length) throw Object.assign(new RescueError(failed.map((c) => `${c.name}: ${c.detail}`).join('; ')), { checks })
        return { value: checks, text: `${checks.length} checks passed: cluster ${plan.clusterIdHex}, ${checks.find((c) => c.name === 'one-leader')?.detail}` }
      },
    }], 1)
    const checks: Check[] = verified.values.get('cluster') ?? (verified.failed[0]?.error as { checks?: Check[] }).checks ?? []
    if (!checks.length) throw verified.failed[0].error
    const bad = checks.filter((c) => !c.ok)
    const recoverySeconds = (Date.now() - changesStarted) / 1000
    if (bad.length) {
      await disarmed()
      const lag = lagging.length ? `\n\nMembers that did not come up:\n${lagging.map((l) => `  ${l.split('\n').join('\n  ')}`).join('\n')}\n\nFix the cause on those hosts, then run the same command again: it finishes them and leaves the others alone.` : ''
      return finish({ exitCode: ExitCode.VERIFY, result: 'verification-failed', checks, recoverySeconds, message: `the cluster is up but verification failed:\n${bad.map((c) => `  ✖ ${c.name}: ${c.detail}`).join('\n')}${lag}` })
    }
    // Bookkeeping after the proof: a host that cannot record it is a warning, not a failed recovery.
    // One step per host (closingScript): the journal's mark, then (only once it is in) the copied snapshot removed.
    const [marked] = await Promise.all([Promise.allSettled(plan.members.map((m) => exec(remote(m.name), m.scripts.complete, o, 'mark complete, remove the copied snapshot', STEP_LIMIT.baseMs))), disarmed()])
    const closed = marked.map((r) => (r.status === 'fulfilled' ? r.value.stdout : ''))
    const removed = closed.map((out) => fields(out, 'removed'))
    const files = removed.flat()
    if (files.length) o.ui.info(`removed the copied snapshot from ${removed.filter((f) => f.length).length} of ${plan.members.length} hosts' work dirs (${files.length} file(s)); the file you gave is yours to keep`)
    for (const f of closed.flatMap((out) => fields(out, 'left'))) warn(`the copied snapshot ${f} could not be removed; it is a whole copy of the data: remove it by hand`)
    marked.forEach((r, i) => {
      if (r.status === 'rejected') warn(`${plan.members[i].name}: the cluster is verified, but its state file ${plan.members[i].paths.state} could not be marked complete (${formatError(r.reason).split('\n')[0]}); a later recovery from this same snapshot and token would treat the member as already restored; its copied snapshot in ${plan.members[i].paths.work} is left (a whole copy of the data: remove it by hand)`)
    })
    return finish({ exitCode: ExitCode.OK, result: 'recovered', checks, recoverySeconds, message: `recovered and verified: ${plan.members.length} members, cluster ${plan.clusterIdHex}, revision ≥ ${snapshotRevision}` })
  } catch (err) {
    // The drop-ins of members started before the failure or interrupt are being removed:
    // waited for, bounded, never in place of the error being reported (one left is said,
    // and the next run removes it).
    await settledWithin(disarmed(), 15_000)
    // A changing step that failed may still have changed its host: only a run that attempted none says "Nothing was changed".
    const partial = journal.failedChanges()
    const changed = journal.changed() || partial.length > 0
    const base = err instanceof RescueError ? err : undefined
    let message = formatError(err)
    if (res.plan && (changed || err instanceof Interrupted)) {
      message += `\n\nWhere each member stands:\n${hostStates(res.plan, journal).map((l) => `  ${l}`).join('\n')}`
      if (!journal.records.some((r) => r.phase === 'stop')) message += '\nNo member was stopped and no data was moved: the run ended before any member was stopped.'
    }
    if (changed) {
      message += `\n\nWhat this run changed:\n${[...journal.changes(), ...partial].map((c) => `  ${c}`).join('\n')}`
      message += `\n\nTo go on: fix the cause above, then run the same command again. It reuses the copied snapshot, never sets old data aside twice, and finishes members already restored${res.plan && journal.records.some((r) => r.phase === 'swap' && r.outcome === 'ok') ? ` (it picks up token ${res.plan.token} from the hosts; or pass --token ${res.plan.token})` : ''}.`
    } else if (base?.exitCode === ExitCode.FAILED) {
      message += '\nNothing was changed.'
    }
    if (err instanceof Interrupted) {
      if (!changed) message += '\nNothing was changed.'
      return finish({ exitCode: ExitCode.INTERRUPTED, result: 'interrupted', message })
    }
    const exitCode = changed ? ExitCode.FAILED : (base?.exitCode ?? ExitCode.FAILED)
    return finish({ exitCode, result: changed || exitCode === ExitCode.FAILED ? 'failed' : 'refused', message })
  }
}

function refused(r: PhaseResult<unknown>, what: string): Partial<RecoverResult> {
  const lines = r.failed.map((f) => `  ${formatError(f.error).split('\n').join('\n  ')}`)
  return { exitCode: ExitCode.PREFLIGHT, result: 'refused', message: `${what} on ${r.failed.length} host(s):\n${lines.join('\n')}\nNothing was changed on any host.` }
}

/**
 * Removes a systemd member's hold drop-in (inert since its start) and reloads
 * systemd there; a host where that fails, or whose hold is back, is a warning.
 * Never rejects.
 */
async function disarmHold(m: RecoveryPlan['members'][number], remote: (name: string) => Pick<RemoteHost, 'name' | 'exec'>, o: RecoverOptions, warn: (w: string) => void): Promise<void> {
  const r = await Promise.resolve().then(() => exec(remote(m.name), m.scripts.disarm!, o, 'remove the hold', STEP_LIMIT.markMs)).catch((e: unknown) => ({ stdout: `hold.left=${formatError(e).split('\n')[0]}` }))
  const left = field(r.stdout, 'hold.left')
  const kept = field(r.stdout, 'hold.kept')
  const dropIn = unitHold(m.unit!).dropIn
  if (left) warn(`${m.name}: the hold's drop-in ${dropIn} may be left (${left === dropIn ? 'removing it, or the reload of systemd after, failed' : left}); it is inert (its hold file is gone), a reboot or the next run removes it, or by hand: remove it, then systemctl daemon-reload`)
  if (kept) warn(`${m.name}: ${kept} exists again (something holds ${m.unit} down): the hold's drop-in stays; remove both, then systemctl daemon-reload`)
}

/** Runs one remote script, echoing it and its output with -v. */
async function exec(host: Pick<RemoteHost, 'name' | 'exec'>, script: Script, o: RecoverOptions, phase: string, limitMs?: number) {
  if (o.verbose) o.ui.info(`[${host.name}] ${phase} $ ${script.text.trim().split('\n').join(`\n[${host.name}]   `)}`)
  const r = await host.exec(script, limitMs === undefined ? undefined : { timeoutMs: limitMs }).catch((e: unknown) => {
    if (e instanceof RemoteCommandError && e.code !== null) throw inItsOwnWords(phase, e)
    if (!(e instanceof RemoteCommandError && e.signal === 'TIMEOUT')) throw e
    throw new RescueError(`${phase} did not finish within ${Math.round(limitMs! / 1000)} s on this host and was given up; its process group there is sent TERM, then KILL`, {
      where: host.name,
      hint: 'Something on the host hangs (a hung disk, a wedged systemd, a stuck mount): look at it before running again. If the step is only slow (a large snapshot on a slow disk), give it more time with --step-timeout.',
    })
  })
  if (o.verbose && (r.stdout.trim() || r.stderr.trim())) o.ui.info(`[${host.name}] ${phase} > ${(r.stdout + r.stderr).trim().split('\n').join(`\n[${host.name}] ${phase} > `)}`)
  return r
}

/**
 * A step's script that exited non-zero, in its own words rather than as "remote script …
 * failed": its last line on stderr first (where each script says why it stops), then up to
 * 7 lines before it (etcdutl's log, what changed). The exit code is added where those words
 * may not be the reason: a code other than the scripts' own 1 and 3 (a signal, a shell error), or
 * nothing said on stderr.
 */
function inItsOwnWords(phase: string, e: RemoteCommandError): RescueError {
  const said = e.stderr.trim() !== ''
  const lines = (said ? e.stderr : e.stdout).split('\n').filter((l) => l.trim())
  const last = lines.pop()?.trim()
  const code = (e.code === 1 || e.code === 3) && said ? '' : ` (exit code ${e.code}${said ? '' : ', nothing on stderr'})`
  const message = last === undefined ? `${phase}: its script ended with exit code ${e.code}, saying nothing` : [`${last}${code}`, ...lines.slice(-7)].join('\n')
  return new RescueError(message, { where: e.host, hint: e.hint, cause: e })
}

function stopText(unit: string | undefined, unitStopped: string | undefined, stopped: string | undefined): string {
  const [was, mainPid, killed] = (unitStopped ?? '').split(' ')
  const how = killed ? 'killed after 3 s of systemctl stop' : 'stopped'
  const byUnit = unit ? `${unit} ${was === 'active' || was === 'activating' ? `${how} (was ${was}${mainPid && mainPid !== '0' ? `, pid ${mainPid}` : ''})` : `was ${was || 'not running'}`}, held until start` : ''
  const strays = stopped && stopped !== 'none-running' ? `stopped pid ${stopped}${unit ? ' outside the unit' : ''}` : ''
  return [byUnit, strays].filter(Boolean).join('; ') || 'no etcd of this member was running'
}

/** The last `key=value` line's value. */
function field(stdout: string, key: string): string | undefined {
  return fields(stdout, key).at(-1)
}

/** Every `key=value` line's value, in order (a script that names several files). */
function fields(stdout: string, key: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1))
}

function describeFacts(f: HostFacts): string {
  const data = f.dataDir.exists ? `data dir ${f.dataDir.hasMember ? 'holds a member' : f.dataDir.entries ? `has ${f.dataDir.entries} entries` : 'empty'}${f.dataDir.mountpoint ? ' (mount point)' : ''}` : 'no data dir'
  const running = f.pids.length ? `, etcd running (pid ${f.pids.join(' ')})` : ''
  return `etcd ${f.version?.text}, ${data}${running}, ${formatBytes(f.parent.freeBytes ?? 0)} free`
}

/** Whether the snapshot is a file on this machine (not HOST:PATH); a value that names neither is left to checkSnapshot to refuse. */
function isLocal(value: string, members: Member[]): boolean {
  try {
    return !snapshotSource(value, members).host
  } catch {
    return false
  }
}
