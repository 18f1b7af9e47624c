// Waiting for a healthy quorum after the start: every member polled on its own host
// until all answer healthy or the timeout; a unit must also be active.
import { RescueError } from '../errors.ts'
import type { RecoveryPlan } from '../plan/recovery.ts'
import { unitStateScript } from '../plan/systemd.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import type { RecoverOptions } from './recover.ts'
import { probeMember, type RemoteHost } from './verify.ts'

export async function waitForQuorum(plan: RecoveryPlan, pool: { get(name: string): RemoteHost }, o: RecoverOptions, journal: Journal) {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000)
  const healthy = new Set<string>()
  const views = new Map<string, (t: string) => void>()
  const last = new Map<string, string>()
  const poller = (async () => {
    while (Date.now() < deadline && healthy.size < plan.members.length && !o.signal?.aborted) {
      await Promise.all(plan.members.map(async (m) => {
        const p = await probeMember(pool.get(m.name), m).catch((e) => ({ healthy: false, error: String(e), status: undefined }))
        if (p.healthy) healthy.add(m.name)
        else healthy.delete(m.name)
        const text = p.healthy ? `healthy, ${p.status?.leader === m.memberId ? 'leader' : 'follower'}` : `waiting: ${p.error}`
        last.set(m.name, text)
        views.get(m.name)?.(text)
      }))
      if (healthy.size < plan.members.length) await new Promise((r) => setTimeout(r, 200))
    }
  })()
  return runPhase(o.ui, journal, 'quorum', 'Wait for a healthy quorum', plan.members.map((m) => ({
    host: m.name,
    run: async (view) => {
      views.set(m.name, view.update)
      await poller
      // Healthy is not enough under systemd: the unit itself must be active (not a
      // stray process answering while the unit is failed or restarting).
      const state = m.unit && (await unitState(pool.get(m.name), m.unit, healthy.has(m.name)))
      if (healthy.has(m.name) && (!m.unit || state === 'active')) return { value: null, text: `${last.get(m.name) ?? 'healthy'}${m.unit ? `, ${m.unit} active` : ''}` }
      if (m.unit) last.set(m.name, healthy.has(m.name) ? `answers, but unit ${m.unit} is ${state || 'unknown'}` : `${last.get(m.name) ?? 'no answer'}; unit ${m.unit} is ${state || 'unknown'}`)
      const tail = await pool.get(m.name).exec(m.scripts.logTail, { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined)
      throw new RescueError(`not healthy (${last.get(m.name) ?? 'no answer'})${tail?.stdout.trim() ? `\n  last log lines:\n${tail.stdout.trim().split('\n').map((l) => `    ${l}`).join('\n')}` : ''}`, { where: m.name })
    },
  })), plan.members.length)
}

/** The unit's state; a healthy member's Type=notify unit may still be 'activating' a moment, so that is waited out (10 s). */
async function unitState(host: RemoteHost, unit: string, healthy: boolean): Promise<string> {
  for (let i = 0; ; i++) {
    const state = (await host.exec(unitStateScript(unit), { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined))?.stdout.trim() ?? ''
    if (!healthy || state !== 'activating' || i >= 20) return state
    await new Promise((r) => setTimeout(r, 500))
  }
}
