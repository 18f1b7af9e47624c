// Waiting for a healthy quorum after the start. One poller asks every member's
// /health through its gateway (a connection forwarded by the member's own host:
// no process started there per probe), often while it waits, seldom once it is
// healthy. The wait ends the moment every member has answered healthy, or at the
// timeout; then each member's status is read once (verification reuses it) and a
// unit must also be active. What counts as healthy is decided by observe(), pure.
import { setTimeout as sleep } from 'node:timers/promises'
import { RescueError } from '../errors.ts'
import type { RecoveryPlan } from '../plan/recovery.ts'
import { unitStateScript } from '../plan/systemd.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase, type PhaseResult } from '../task/phase.ts'
import type { RecoverOptions } from './recover.ts'
import { clusterView, hostOf, reason, type ClusterView, type RemoteHost, type RemoteHosts } from './verify.ts'
import type { Gateway } from '../etcd/gateway.ts'

/** One probe's outcome. A member that did not answer (timeout, refused, lost channel) said nothing about its health. */
export type Answer =
  | { kind: 'healthy' }
  | { kind: 'unhealthy'; reason: string }
  | { kind: 'silent'; reason: string }

export interface MemberWatch {
  /** Counts toward the quorum. */
  healthy: boolean
  /** What the member last said (or why it said nothing), for the operator. */
  last: string
  /** While healthy: since when its probes have gone unanswered. */
  silentSince?: number
}

export const POLL = {
  /** Between probe starts while a member is not healthy: a quorum that forms is seen within this (plus one answer). */
  waitingMs: 200,
  /** Between probe starts once it is: only to notice it going away. */
  healthyMs: 1000,
  /** A healthy member unanswered this long no longer counts (it may be gone); one timeout never does that. */
  forgetSilentMs: 5000,
  /** One /health request. */
  timeoutMs: 3000,
}

export const NOT_ASKED: MemberWatch = { healthy: false, last: 'not answered yet' }

/**
 * The member's standing after one more probe. A healthy answer counts at once; an
 * unhealthy answer (etcd itself said so) revokes it; silence does not, unless a
 * member that was healthy stays silent for POLL.forgetSilentMs.
 */
export function observe(w: MemberWatch, a: Answer, now: number): MemberWatch {
  if (a.kind === 'healthy') return { healthy: true, last: 'healthy' }
  if (a.kind === 'unhealthy') return { healthy: false, last: `unhealthy: ${a.reason}` }
  if (!w.healthy) return { healthy: false, last: `no answer: ${a.reason}` }
  const since = w.silentSince ?? now
  if (now - since >= POLL.forgetSilentMs) return { healthy: false, last: `no answer for ${Math.round((now - since) / 1000)} s after it was healthy: ${a.reason}` }
  return { healthy: true, last: w.last, silentSince: since }
}

/** How long after a probe's start the member is asked again. */
export function nextProbeAfter(w: MemberWatch): number {
  return w.healthy ? POLL.healthyMs : POLL.waitingMs
}

/** Every member healthy: the wait is over. (Fewer than all but a majority is a quorum; verification names the rest.) */
export function everyoneHealthy(watches: Iterable<MemberWatch>): boolean {
  for (const w of watches) if (!w.healthy) return false
  return true
}

/** One /health probe: any HTTP answer is the member's word; no answer is silence. */
export async function ask(gw: Gateway, timeoutMs = POLL.timeoutMs): Promise<Answer> {
  try {
    const h = await gw.health(timeoutMs)
    return h.healthy ? { kind: 'healthy' } : { kind: 'unhealthy', reason: h.reason ?? 'unhealthy' }
  } catch (e) {
    return { kind: 'silent', reason: reason(e) }
  }
}

export type QuorumWait = PhaseResult<null> & { view: ClusterView }

export async function waitForQuorum(
  plan: RecoveryPlan,
  hosts: RemoteHosts,
  o: Pick<RecoverOptions, 'ui' | 'timeoutMs' | 'signal'>,
  journal: Journal,
): Promise<QuorumWait> {
  const view = clusterView(plan.members, hosts)
  const watches = new Map(plan.members.map((m) => [m.name, NOT_ASKED]))
  const shows = new Map<string, (t: string) => void>()
  const over = new AbortController()
  const deadline = setTimeout(() => over.abort(), o.timeoutMs ?? 120_000)
  const stop = o.signal ? AbortSignal.any([over.signal, o.signal]) : over.signal
  const stopped = new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })))

  const watch = async (name: string) => {
    const gw = view.get(name)!.gateway
    while (!stop.aborted) {
      const started = Date.now()
      const answer = await ask(gw)
      if (stop.aborted) return
      const w = observe(watches.get(name)!, answer, Date.now())
      watches.set(name, w)
      shows.get(name)?.(w.healthy ? 'healthy' : `waiting: ${w.last}`)
      if (everyoneHealthy(watches.values())) return over.abort()
      await sleep(Math.max(0, started + nextProbeAfter(w) - Date.now()), undefined, { signal: stop }).catch(() => {})
    }
  }
  const poller = (async () => {
    // A probe still in flight when the wait ends is not waited for (its answer is dropped).
    await Promise.race([Promise.all(plan.members.map((m) => watch(m.name))), stopped])
    clearTimeout(deadline)
    // Every member's status at about one moment (one leader, comparable revisions): verification reuses it.
    await Promise.all(plan.members.map(async (m) => {
      const v = view.get(m.name)!
      v.healthy = watches.get(m.name)!.healthy
      v.status = await v.gateway.status(POLL.timeoutMs).catch(() => undefined)
    }))
  })()

  const result = await runPhase(o.ui, journal, 'quorum', 'Wait for a healthy quorum', plan.members.map((m) => ({
    host: m.name,
    run: async (show) => {
      shows.set(m.name, show.update)
      await poller
      const w = watches.get(m.name)!
      const status = view.get(m.name)!.status
      const role = status ? (status.leader === m.memberId ? 'leader' : 'follower') : 'status not read'
      // Healthy is not enough under systemd: the unit itself must be active (not a
      // stray process answering while the unit is failed or restarting).
      const state = m.unit && (await unitState(hostOf(hosts, m.name), m.unit, w.healthy))
      if (w.healthy && (!m.unit || state === 'active')) return { value: null, text: `healthy, ${role}${m.unit ? `, ${m.unit} active` : ''}` }
      let how = w.healthy ? `answers healthy, but unit ${m.unit} is ${state || 'unknown'}` : `${w.last}${m.unit ? `; unit ${m.unit} is ${state || 'unknown'}` : ''}`
      if (status?.errors.length) how += `; its status says: ${status.errors.join(', ')}`
      const tail = await hostOf(hosts, m.name).exec(m.scripts.logTail, { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined)
      throw new RescueError(`not healthy (${how})${tail?.stdout.trim() ? `\n  last log lines:\n${tail.stdout.trim().split('\n').map((l) => `    ${l}`).join('\n')}` : ''}`, { where: m.name })
    },
  })), plan.members.length)
  return Object.assign(result, { view })
}

/** The unit's state; a healthy member's Type=notify unit may still be 'activating' a moment, so that is waited out (10 s). */
async function unitState(host: RemoteHost, unit: string, healthy: boolean): Promise<string> {
  for (let i = 0; ; i++) {
    const state = (await host.exec(unitStateScript(unit), { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined))?.stdout.trim() ?? ''
    if (!healthy || state !== 'activating' || i >= 20) return state
    await sleep(500)
  }
}
