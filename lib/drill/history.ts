// The drill history (reports/drill-history.jsonl, one line per drill) as a
// small inline SVG chart: recovery time (RTO) as a line, data lost (RPO, keys)
// as bars, one point per drill, oldest left. No scripts, no external assets.
export interface HistoryEntry {
  at: string
  scenario: string
  result: string
  rtoSeconds?: number
  recoveryPoint?: { keysLost: number; revisionsLost: number }
  etcdVersion?: string
}

/** Lines that parse and carry a time; anything else (a hand edit, a cut line) is skipped. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const e = JSON.parse(line) as Partial<HistoryEntry>
      if (typeof e.at !== 'string' || Number.isNaN(Date.parse(e.at))) continue
      out.push({
        at: e.at,
        scenario: String(e.scenario ?? ''),
        result: String(e.result ?? ''),
        rtoSeconds: typeof e.rtoSeconds === 'number' && Number.isFinite(e.rtoSeconds) ? e.rtoSeconds : undefined,
        recoveryPoint: e.recoveryPoint && typeof e.recoveryPoint.keysLost === 'number' ? { keysLost: e.recoveryPoint.keysLost, revisionsLost: Number(e.recoveryPoint.revisionsLost) || 0 } : undefined,
        etcdVersion: typeof e.etcdVersion === 'string' ? e.etcdVersion : undefined,
      })
    } catch {
      // not a history line
    }
  }
  return out.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The chart of the last `max` drills; empty string when there is no history. */
export function historySvg(history: HistoryEntry[], max = 40): string {
  const h = history.slice(-max)
  if (!h.length) return ''
  const W = 900
  const H = 200
  const left = 50
  const right = 50
  const top = 16
  const bottom = 40
  const plotW = W - left - right
  const plotH = H - top - bottom
  const rtoMax = niceMax(Math.max(1, ...h.map((e) => e.rtoSeconds ?? 0)))
  const lostMax = niceMax(Math.max(1, ...h.map((e) => e.recoveryPoint?.keysLost ?? 0)))
  const slot = plotW / h.length
  const cx = (i: number) => left + slot * (i + 0.5)
  const yRto = (v: number) => top + plotH - (v / rtoMax) * plotH
  const yLost = (v: number) => top + plotH - (v / lostMax) * plotH
  const parts: string[] = []
  for (const f of [0, 0.5, 1]) {
    const y = top + plotH - f * plotH
    parts.push(`<line x1="${left}" y1="${y}" x2="${W - right}" y2="${y}" stroke="#eee"/>`)
    parts.push(`<text x="${left - 4}" y="${y + 4}" font-size="10" fill="#1e88e5" text-anchor="end">${fmt(rtoMax * f)}s</text>`)
    parts.push(`<text x="${W - right + 4}" y="${y + 4}" font-size="10" fill="#c62828">${fmt(lostMax * f)}</text>`)
  }
  h.forEach((e, i) => {
    const lost = e.recoveryPoint?.keysLost
    if (lost) {
      const y = yLost(lost)
      parts.push(`<rect x="${(cx(i) - slot * 0.3).toFixed(1)}" y="${y.toFixed(1)}" width="${(slot * 0.6).toFixed(1)}" height="${(top + plotH - y).toFixed(1)}" fill="#c62828" opacity="0.6"><title>${esc(e.at)} ${esc(e.scenario)}: ${lost} keys, ${e.recoveryPoint!.revisionsLost} revisions lost</title></rect>`)
    }
  })
  const pts = h.map((e, i) => (e.rtoSeconds !== undefined ? [cx(i), yRto(e.rtoSeconds)] : undefined))
  const line = pts.filter((p): p is number[] => Boolean(p)).map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')
  if (line) parts.push(`<polyline points="${line}" fill="none" stroke="#1e88e5" stroke-width="2"/>`)
  h.forEach((e, i) => {
    const p = pts[i]
    const color = e.result === 'verified' ? '#1e88e5' : '#d50000'
    const rp = e.recoveryPoint ? `, ${e.recoveryPoint.keysLost} keys lost` : ''
    if (p) parts.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="4" fill="${color}"><title>${esc(e.at)} ${esc(e.scenario)} (${esc(e.result)}): RTO ${e.rtoSeconds!.toFixed(1)} s${rp}</title></circle>`)
    else parts.push(`<text x="${cx(i).toFixed(1)}" y="${top + plotH - 4}" font-size="10" fill="#d50000" text-anchor="middle">✖<title>${esc(e.at)} ${esc(e.scenario)}: ${esc(e.result)}</title></text>`)
  })
  const first = h[0].at.slice(0, 16).replace('T', ' ')
  const last = h[h.length - 1].at.slice(0, 16).replace('T', ' ')
  parts.push(`<text x="${left}" y="${H - 22}" font-size="10" fill="#666">${esc(first)}</text>`)
  parts.push(`<text x="${W - right}" y="${H - 22}" font-size="10" fill="#666" text-anchor="end">${esc(last)}</text>`)
  parts.push(`<text x="${left}" y="${H - 6}" font-size="11" fill="#1e88e5">● recovery time (RTO, left axis)</text><text x="${left + 240}" y="${H - 6}" font-size="11" fill="#c62828">▮ keys lost (RPO, right axis)</text><text x="${W - right}" y="${H - 6}" font-size="11" fill="#666" text-anchor="end">${h.length} drill(s)</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="drill history: recovery time and data lost">${parts.join('')}</svg>`
}

function niceMax(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1)
}
