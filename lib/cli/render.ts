// The end of a run, for people (a recap table) and for machines (--report JSON).
import { writeFileSync } from 'node:fs'
import type { RecoverResult } from '../recover/recover.ts'
import { formatSeconds } from '../task/format.ts'
import type { RecoveryPlan } from '../plan/recovery.ts'
import { comparisonText, choiceText } from '../plan/survivors.ts'

const PHASES = ['connect', 'preflight', 'copy', 'restore', 'stop', 'swap', 'start', 'quorum'] as const

/**
 * A row per host, a column per step: when it began (seconds into the run) and
 * how long it took, `-` skipped (already done), `✖` failed. Steps overlap across
 * hosts: each host goes on as soon as its own previous step is done.
 */
export function recapTable(r: RecoverResult): string {
  const hosts = r.members.map((m) => m.name)
  const used = PHASES.filter((p) => r.journal.records.some((x) => x.phase === p))
  const t0 = r.journal.startedAt.getTime()
  const cell = (host: string, phase: string) => {
    const rec = r.journal.records.find((x) => x.host === host && x.phase === phase)
    if (!rec) return ''
    if (rec.outcome === 'failed') return '✖'
    if (rec.outcome === 'skipped') return '-'
    return `${((Date.parse(rec.startedAt) - t0) / 1000).toFixed(1)}+${rec.seconds.toFixed(1)}`
  }
  const rows = [['member', ...used], ...hosts.map((h) => [h, ...used.map((p) => cell(h, p))])]
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  const table = rows.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
  return `${table}\n(each step: began at s into the run + seconds it took; - already done, ✖ failed)`
}

export function planText(plan: RecoveryPlan): string {
  const lines = [
    `Recovery plan (etcd ${plan.etcdVersion})`,
    `  snapshot         ${plan.snapshot.host ? `${plan.snapshot.host}:` : ''}${plan.snapshot.path} (${plan.snapshot.size} bytes, sha256 ${plan.snapshot.sha256})`,
    `  token            ${plan.token} (${plan.tokenSource})`,
    `  initial cluster  ${plan.initialCluster}`,
    `  cluster ID       ${plan.clusterIdHex} (predicted)`,
  ]
  if (plan.bumpRevision) lines.push(`  bump revision    ${plan.bumpRevision} (with --mark-compacted)`)
  for (const m of plan.members) {
    lines.push('', `== ${m.name} (${m.inventoryHost})  member ID ${m.memberIdHex}`)
    lines.push(`  peer ${m.peerUrl}  client ${m.clientUrl}`)
    lines.push(`  data dir ${m.paths.dataDir}; old data → ${m.paths.aside}; snapshot → ${m.paths.snapshot}`)
    const o = m.origins
    lines.push(`  from: name ← ${o.name}; address ← ${o.address}; peer URL ← ${o.peerUrl}; client URL ← ${o.clientUrl}; data dir ← ${o.dataDir}; service ← ${o.service}, ${o.serviceName}`)
    if (m.unitNote) lines.push(`  ${m.unitNote}`)
    if (m.tls) lines.push(`  etcdctl TLS: --cacert ${m.tls.cacert ?? '-'} --cert ${m.tls.cert ?? '-'} --key ${m.tls.key ?? '-'}`)
    if (m.etcdUser) lines.push(`  restored data owned by ${m.etcdUser}, mode 0700`)
    const resume = [
      m.resume.snapshotInPlace && 'snapshot already in place (copy skipped)',
      m.resume.alreadyRestored && 'already restored with this token (restore skipped)',
      m.resume.running.length && `etcd running now: pid ${m.resume.running.join(' ')}`,
    ].filter(Boolean)
    if (resume.length) lines.push(`  now: ${resume.join('; ')}`)
    for (const [phase, script] of Object.entries({ copy: `ssh … < snapshot\n${m.scripts.upload.text}`, stop: m.scripts.stop.text, restore: m.scripts.restore.text, start: m.scripts.start.text })) {
      lines.push(`  -- ${phase}`, ...script.trim().split('\n').map((l) => `     ${l}`))
    }
  }
  return lines.join('\n')
}

export function reportJson(r: RecoverResult, extra: Record<string, unknown> = {}) {
  return {
    tool: 'etcd-rescue',
    result: r.result,
    exitCode: r.exitCode,
    message: r.message,
    startedAt: r.journal.startedAt.toISOString(),
    totalSeconds: r.totalSeconds,
    recoverySeconds: r.recoverySeconds,
    snapshot: r.snapshot && { path: r.snapshot.path, host: r.snapshot.host, size: r.snapshot.size, sha256: r.snapshot.sha256, hasTrailer: r.snapshot.hasTrailer, revision: r.snapshot.revision },
    plan: r.plan && {
      etcdVersion: r.plan.etcdVersion,
      token: r.plan.token,
      tokenSource: r.plan.tokenSource,
      initialCluster: r.plan.initialCluster,
      clusterId: r.plan.clusterIdHex,
      bumpRevision: r.plan.bumpRevision,
      members: r.plan.members.map((m) => ({
        name: m.name,
        inventoryHost: m.inventoryHost,
        memberId: m.memberIdHex,
        peerUrl: m.peerUrl,
        clientUrl: m.clientUrl,
        dataDir: m.paths.dataDir,
        oldDataAside: m.paths.aside,
        restoreTool: m.restoreTool,
        resume: m.resume,
      })),
    },
    phases: r.journal.records.map((x) => ({ name: x.phase, host: x.host, startedAt: x.startedAt, endedAt: x.endedAt, seconds: x.seconds, outcome: x.outcome, detail: x.detail, ...(x.facts ? { facts: x.facts } : {}) })),
    verification: r.checks,
    survivors: r.survivors && {
      snapshotRevision: r.survivors.snapshot.revision,
      snapshotRaftIndex: r.survivors.snapshot.raftIndex,
      members: r.survivors.members,
      newer: r.survivors.newer.map((m) => m.member),
      acceptedDataLoss: r.survivors.accepted,
      givenUp: r.survivors.givenUp,
      revisionsLost: r.survivors.accepted ? r.survivors.revisionsLost : 0,
    },
    fromSurvivors: r.fromSurvivors && {
      chosen: r.fromSurvivors.choice.chosen.member,
      reason: r.fromSurvivors.choice.reason,
      held: r.fromSurvivors.choice.held.map((d) => ({ member: d.member, state: d.state, revision: d.revision, raftIndex: d.raftIndex, clusterId: d.clusterId })),
      backup: r.fromSurvivors.snapshot && { path: r.fromSurvivors.snapshot.path, revision: r.fromSurvivors.snapshot.revision, raw: r.fromSurvivors.snapshot.raw },
    },
    warnings: r.warnings,
    remoteCommands: r.remoteCommands,
    roundTrips: r.roundTrips,
    peakRssBytes: r.peakRssBytes,
    ...extra,
  }
}

export function writeReport(path: string, data: unknown): void {
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`)
}

export function summaryLine(r: RecoverResult): string {
  const t = r.recoverySeconds !== undefined ? ` in ${formatSeconds(r.recoverySeconds)} from first change (${formatSeconds(r.totalSeconds)} in all)` : ''
  const g = r.survivors?.givenUp ?? []
  const lost = g.length && r.exitCode === 0 ? `\ndata given up (--accept-data-loss): ${g.map((x) => `${x.member} held revision ${x.revision}, ${x.revisionsLost} revision(s) past the snapshot`).join('; ')}` : ''
  const from = r.fromSurvivors?.snapshot && r.exitCode === 0 ? `\nrecovered from ${r.fromSurvivors.choice.chosen.member}, the freshest member: ${r.fromSurvivors.choice.reason}; its snapshot is kept in ${r.fromSurvivors.snapshot.path}` : ''
  return `${r.message}${t}${from}${lost}`
}

/** What the members held against the snapshot, and the member chosen with --from-survivors. */
export function survivorsText(r: RecoverResult): string {
  const parts: string[] = []
  if (r.fromSurvivors) parts.push(choiceText(r.fromSurvivors.choice))
  if (r.survivors) parts.push(comparisonText(r.survivors, r.survivors.accepted))
  return parts.join('\n\n')
}
