import { describe, expect, it } from 'vitest'
import { historySvg, parseHistory } from '../../lib/drill/history.ts'
import { drillHtml } from '../../lib/drill/html.ts'
import type { DrillReport } from '../../lib/drill/drill.ts'

const LINES = [
  JSON.stringify({ at: '2026-11-25T10:00:00.000Z', scenario: 'total-loss', result: 'verified', rtoSeconds: 7.5 }),
  'not json',
  JSON.stringify({ at: 'yesterday', scenario: 'x' }),
  JSON.stringify({ at: '2026-11-25T09:00:00.000Z', scenario: 'quorum-loss-after-writes', result: 'verified', rtoSeconds: 9.1, recoveryPoint: { keysLost: 0, revisionsLost: 0 } }),
  JSON.stringify({ at: '2026-11-25T11:00:00.000Z', scenario: 'quorum-loss', result: 'failed', recoveryPoint: { keysLost: 12, revisionsLost: 30 } }),
].join('\n')

describe('drill history', () => {
  it('keeps the lines that parse, oldest first', () => {
    const h = parseHistory(LINES)
    expect(h.map((e) => e.scenario)).toEqual(['quorum-loss-after-writes', 'total-loss', 'quorum-loss'])
    expect(h[2]).toMatchObject({ rtoSeconds: undefined, recoveryPoint: { keysLost: 12, revisionsLost: 30 } })
  })

  it('charts recovery time as points and data lost as bars, inline, with nothing external', () => {
    const svg = historySvg(parseHistory(LINES))
    expect(svg.match(/<circle /g)).toHaveLength(2)
    expect(svg.match(/<rect /g)).toHaveLength(1)
    expect(svg).toMatch(/<title>2026-11-25T11:00:00.000Z quorum-loss: 12 keys, 30 revisions lost<\/title>/)
    expect(svg).toMatch(/<polyline points="[\d., ]+"/)
    expect(svg).not.toMatch(/href|src=|<script/)
    expect(historySvg([])).toBe('')
  })

  it('escapes what a history line says', () => {
    const svg = historySvg(parseHistory(JSON.stringify({ at: '2026-11-25T10:00:00.000Z', scenario: '<script>x</script>', result: 'verified', rtoSeconds: 1 })))
    expect(svg).not.toContain('<script>')
  })

  it('the drill page shows the recovery point beside the recovery time, and the history', () => {
    const report = {
      tool: 'etcd-rescue drill', result: 'verified', scenario: 'quorum-loss-after-writes', expected: 'e', actual: 'a',
      startedAt: '2026-11-25T10:00:00.000Z', endedAt: '2026-11-25T10:01:00.000Z', target: { kind: 'lab', name: 'l', hosts: 3 },
      keysWritten: 10, keysChecked: 10, keyChecks: [], phases: [], rtoSeconds: 8,
      recoveryPoint: { keysLost: 0, revisionsLost: 0 },
      ways: [
        { way: 'backup --accept-data-loss', rtoSeconds: 7, exitCode: 0, keysLost: 30, revisionsLost: 31 },
        { way: 'from-survivors', rtoSeconds: 8, exitCode: 0, keysLost: 0, revisionsLost: 0, chosen: 'etcd3' },
      ],
    } as unknown as DrillReport
    const html = drillHtml(report, parseHistory(LINES))
    expect(html).toMatch(/RTO \(disaster → verified cluster\)<\/td><td>8\.0 s<\/td><\/tr><tr><td>recovery point \(data lost\)<\/td><td>0 keys, 0 revisions/)
    expect(html).toMatch(/backup --accept-data-loss<\/td><td>7\.0 s, 30 keys and 31 revisions lost/)
    expect(html).toMatch(/from-survivors<\/td><td>8\.0 s, 0 keys and 0 revisions lost \(recovered from etcd3\)/)
    expect(html).toMatch(/<h2>Drill history<\/h2>\n<svg[^>]*aria-label="drill history/)
  })
})
