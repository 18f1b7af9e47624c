// A self-contained HTML page of a drill: the verdict, the numbers, and a
// timeline (a row per host, a bar per phase) showing where the time went.
// No scripts, no external resources: it opens from a file anywhere.
import type { DrillReport } from './drill.ts'
import { historySvg, type HistoryEntry } from './history.ts'

export { parseHistory } from './history.ts'

const COLORS: Record<string, string> = {
  'lab up': '#9e9e9e', 'cluster start': '#bdbdbd', 'write data set': '#8d6e63', backup: '#6d4c41',
  disaster: '#e53935', connect: '#5c6bc0', preflight: '#3949ab', copy: '#1e88e5', stop: '#fb8c00',
  restore: '#8e24aa', swap: '#6a1b9a', start: '#00897b', quorum: '#43a047', verify: '#2e7d32', 'verify keys': '#1b5e20', 'lab down': '#9e9e9e',
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export function drillHtml(r: DrillReport, history: HistoryEntry[] = []): string {
  const t0 = Date.parse(r.startedAt)
  const t1 = Math.max(Date.parse(r.endedAt), ...r.phases.map((p) => Date.parse(p.endedAt)))
  const span = Math.max(1, t1 - t0)
  const rows = [...new Set(r.phases.map((p) => p.host))]
  const W = 900
  const label = 110
  const rowH = 26
  const x = (t: number) => label + ((t - t0) / span) * (W - label - 10)
  const bars = r.phases.map((p) => {
    const y = rows.indexOf(p.host) * rowH + 20
    const a = x(Date.parse(p.startedAt))
    const w = Math.max(2, x(Date.parse(p.endedAt)) - a)
    const fill = p.outcome === 'failed' ? '#d50000' : (COLORS[p.name] ?? '#607d8b')
    return `<rect x="${a.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${fill}" opacity="${p.outcome === 'skipped' ? 0.35 : 0.9}"><title>${esc(p.host)} · ${esc(p.name)}: ${p.seconds.toFixed(2)} s (${esc(p.outcome)}) ${esc(p.detail)}</title></rect>`
  })
  const labels = rows.map((h, i) => `<text x="4" y="${i * rowH + 34}" font-size="12">${esc(h)}</text>`)
  const ticks: string[] = []
  const step = niceStep(span / 1000)
  for (let s = 0; s * 1000 <= span; s += step) {
    const tx = x(t0 + s * 1000)
    ticks.push(`<line x1="${tx}" y1="14" x2="${tx}" y2="${rows.length * rowH + 20}" stroke="#eee"/><text x="${tx + 2}" y="11" font-size="10" fill="#666">${s}s</text>`)
  }
  const H = rows.length * rowH + 30
  const legend = [...new Set(r.phases.map((p) => p.name))].map((n) => `<span class="k"><i style="background:${COLORS[n] ?? '#607d8b'}"></i>${esc(n)}</span>`).join(' ')
  const ok = r.result === 'verified'
  const facts: Array<[string, unknown]> = [
    ['scenario', r.scenario], ['expected', r.expected], ['actual', r.actual],
    ['target', `${r.target.kind} ${r.target.name} (${r.target.hosts} hosts)`], ['etcd', r.etcdVersion ?? '—'],
    ['RTO (disaster → verified cluster)', r.rtoSeconds !== undefined ? `${r.rtoSeconds.toFixed(1)} s` : '—'],
    ['recovery point (data lost)', r.recoveryPoint ? `${r.recoveryPoint.keysLost} keys, ${r.recoveryPoint.revisionsLost} revisions` : '—'],
    ...(r.ways ?? []).map((w): [string, unknown] => [`  ${w.way}`, `${w.rtoSeconds.toFixed(1)} s, ${w.keysLost} keys and ${w.revisionsLost} revisions lost${w.chosen ? ` (recovered from ${w.chosen})` : ''}`]),
    ...(r.bumpRevision ? [['bump revision', `${r.bumpRevision} (with --mark-compacted)`] as [string, unknown]] : []),
    ['keys written / checked on every member', `${r.keysWritten} / ${r.keysChecked}`],
    ['snapshot', r.snapshot ? `${r.snapshot.file} (${(r.snapshot.size / 2 ** 20).toFixed(1)} MiB, revision ${r.snapshot.revision})` : '—'],
    ['started / ended', `${r.startedAt} / ${r.endedAt}`],
  ]
  const checks = (r.recovery?.verification ?? []).map((c) => `<li class="${c.ok ? 'ok' : 'bad'}">${c.ok ? '✔' : '✖'} ${esc(c.name)}: ${esc(c.detail)}</li>`).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>etcd-rescue drill: ${esc(r.result)} (${esc(r.scenario)})</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:960px}
h1{font-size:20px}.verdict{padding:8px 12px;border-radius:4px;color:#fff;background:${ok ? '#2e7d32' : '#c62828'};display:inline-block}
table{border-collapse:collapse}td{padding:3px 10px 3px 0;vertical-align:top}td:first-child{color:#555}
.k{margin-right:10px;font-size:12px}.k i{display:inline-block;width:10px;height:10px;margin-right:4px}
li.ok{color:#2e7d32}li.bad{color:#c62828}pre{background:#f5f5f5;padding:8px;white-space:pre-wrap}
</style></head><body>
<h1>etcd-rescue drill</h1>
<p class="verdict">${esc(r.result)}</p>
<table>${facts.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Timeline</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="timeline per host">${ticks.join('')}${labels.join('')}${bars.join('')}</svg>
<p>${legend}</p>
${checks ? `<h2>Cluster verification</h2><ul>${checks}</ul>` : ''}
${history.length ? `<h2>Drill history</h2>\n${historySvg(history)}` : ''}
${r.error ? `<h2>Error</h2><pre>${esc(r.error)}</pre>` : ''}
</body></html>
`
}

function niceStep(seconds: number): number {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300]) if (seconds / s <= 12) return s
  return 600
}
