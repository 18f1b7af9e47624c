// The drill scenario quorum-loss-after-writes (issue 11): writes land after the
// backup, then a majority is lost for good and one member survives holding
// them. The drill recovers it both ways and measures the recovery point (what
// was lost) beside the recovery time: first from the backup with
// --accept-data-loss (the writes after it are lost, and counted), then, after
// the same writes and the same disaster again, with --from-survivors (nothing
// lost). The recommended way's numbers are the drill's RTO and recovery point.
import { ExitCode, RescueError } from '../errors.ts'
import type { Member, MemberContext } from '../inventory/members.ts'
import { memberPorts } from '../plan/recovery.ts'
import { recover, type RecoverResult } from '../recover/recover.ts'
import type { HostPool } from '../task/hosts.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import type { Ui } from '../task/ui.ts'
import { checkDataset, gatewayFor, writeDataset, type Dataset, type Endpoint } from './dataset.ts'
import { killScript, victims, wreckScript } from './disaster.ts'

/** What a recovery lost: keys written before the disaster and not there after, and revisions given up. */
export interface RecoveryPoint {
  keysLost: number
  revisionsLost: number
}

export interface RecoveryWay extends RecoveryPoint {
  way: 'backup --accept-data-loss' | 'from-survivors'
  rtoSeconds: number
  exitCode: number
  /** The member --from-survivors chose, and why. */
  chosen?: string
}

export const AFTER_PREFIX = '/etcd-rescue/drill-after-backup/'

export interface AfterWritesContext {
  members: Member[]
  pool: HostPool
  endpoints: Endpoint[]
  journal: Journal
  ui: Ui
  inventory: string
  group?: string
  memberContext?: MemberContext
  becomePassword?: string
  backupFile: string
  backupDir: string
  /** The data set written before the backup. */
  data: Dataset
  keys: number
  seed: string
  bumpRevision?: number
  knownHosts?: string
  connectTimeoutMs?: number
}

export async function quorumLossAfterWrites(c: AfterWritesContext): Promise<{ ways: RecoveryWay[]; recoveries: RecoverResult[] }> {
  const afterKeys = Math.max(10, Math.floor(c.keys / 10))
  const ways: RecoveryWay[] = []
  const recoveries: RecoverResult[] = []
  for (const way of ['backup --accept-data-loss', 'from-survivors'] as const) {
    const after = await step(c, `writes after backup (${way})`, async () => {
      const d = await writeDataset(c.endpoints.map(gatewayFor), { keys: afterKeys, seed: `${c.seed}-after`, prefix: AFTER_PREFIX })
      return [d, `${d.digests.size} keys the backup does not hold, up to revision ${d.revision}`]
    })
    await disaster(c, way)
    const t0 = Date.now()
    const r = await recover({
      inventory: c.inventory,
      memberContext: c.memberContext,
      becomePassword: c.becomePassword,
      group: c.group,
      ui: c.ui,
      knownHosts: c.knownHosts,
      connectTimeoutMs: c.connectTimeoutMs,
      bumpRevision: c.bumpRevision,
      ...(way === 'from-survivors' ? { fromSurvivors: true, backupDir: c.backupDir } : { snapshot: c.backupFile, acceptDataLoss: true }),
    })
    const rtoSeconds = (Date.now() - t0) / 1000
    c.journal.records.push(...r.journal.records)
    recoveries.push(r)
    if (r.exitCode !== ExitCode.OK) throw new RescueError(`recovery (${way}) did not succeed (exit ${r.exitCode}): ${r.message}`)
    // The data set from before the backup must be whole either way; the writes after it are what the ways differ in.
    const checks = await Promise.all(c.endpoints.map(async (e) => ({ before: await checkDataset(e, c.data), after: await checkDataset(e, after) })))
    const broken = checks.find((k) => k.before.missing.length || k.before.different.length)
    if (broken) throw new RescueError(`${way}: keys written before the backup are missing or differ on ${broken.before.member}`)
    const keysLost = Math.max(...checks.map((k) => k.after.missing.length + k.after.different.length))
    ways.push({ way, rtoSeconds, exitCode: r.exitCode, keysLost, revisionsLost: r.survivors?.accepted ? r.survivors.revisionsLost : 0, chosen: r.fromSurvivors?.choice.chosen.member })
  }
  return { ways, recoveries }
}

/** A majority killed hard and wrecked; the rest keep running without quorum. */
async function disaster(c: AfterWritesContext, way: string): Promise<void> {
  const hit = victims('quorum-loss', c.members.length).map((i) => c.members[i])
  const r = await runPhase(c.ui, c.journal, 'disaster', `Disaster: quorum lost after writes (${way})`, hit.map((m) => ({
    host: m.name,
    run: async () => {
      const h = c.pool.get(m.name)
      const k = await h.exec(killScript(m.dataDir, memberPorts(m)))
      await h.exec(wreckScript(m.dataDir))
      return { value: null, text: `etcd killed (${k.stdout.trim().replace('killed=', 'pid ')}), WAL removed, db overwritten` }
    },
  })), hit.length)
  if (r.failed.length) throw r.failed[0].error
}

async function step<T>(c: AfterWritesContext, name: string, fn: () => Promise<[T, string]>): Promise<T> {
  const r = await runPhase(c.ui, c.journal, name, name, [{ host: 'drill', run: async () => { const [value, text] = await fn(); return { value, text } } }], 1)
  if (r.failed.length) throw r.failed[0].error
  return r.values.get('drill') as T
}
