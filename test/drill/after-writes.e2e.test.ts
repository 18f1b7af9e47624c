// The drill scenario of issue 11 for real: writes after the backup, a majority
// lost, one member survives. Recovered from the backup the writes after it are
// lost (and counted); recovered with --from-survivors nothing is.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

function npmDrill(args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'drill-'))
  const report = join(dir, 'drill.json')
  const r = spawnSync('npm', ['run', 'drill', '--', '--report', report, ...args], {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, CI: 'true', ETCD_RESCUE_LAB_DIR: join(dir, 'labs') },
  })
  return { ...r, dir, report }
}

describe('drill quorum-loss-after-writes', () => {
  // 3.5.30 also recovers as a Kubernetes cluster should (--bump-revision with --mark-compacted); 3.4.23 predates it.
  for (const [etcd, extra] of [['3.4.23', []], ['3.5.30', ['--bump-revision', '1000000000']]] as const) {
    it(`loses the writes after the backup with it, none from the survivor, etcd ${etcd}${extra.length ? ' with --bump-revision' : ''}`, () => {
      const r = npmDrill(['--scenario', 'quorum-loss-after-writes', '--etcd', etcd, '--keys', '300', ...extra])
      try {
        expect(r.status, r.stdout + r.stderr).toBe(0)
        expect(r.stdout).toMatch(/Drill quorum-loss-after-writes: VERIFIED/)
        expect(r.stdout).toMatch(/RPO +0 keys, 0 revisions lost/)
        const report = JSON.parse(readFileSync(r.report, 'utf8'))
        expect(report).toMatchObject({ result: 'verified', etcdVersion: etcd, keysWritten: 300, keysChecked: 300, recoveryPoint: { keysLost: 0, revisionsLost: 0 } })
        const [withBackup, fromSurvivors] = report.ways
        // 30 keys written after the backup (a tenth of 300): all lost with it, each at least one revision.
        expect(withBackup).toMatchObject({ way: 'backup --accept-data-loss', exitCode: 0, keysLost: 30 })
        expect(withBackup.revisionsLost).toBeGreaterThanOrEqual(30)
        expect(fromSurvivors).toMatchObject({ way: 'from-survivors', exitCode: 0, keysLost: 0, revisionsLost: 0, chosen: 'etcd3' })
        expect(report.rtoSeconds).toBe(fromSurvivors.rtoSeconds)
        if (extra.length) {
          expect(report.bumpRevision).toBe(1000000000)
          // The last recovery bumped past the first's bump: the revision went up twice by 1e9.
          const rev = report.recovery.verification.find((c: { name: string }) => c.name === 'revision')
          expect(Number(/lowest member revision (\d+)/.exec(rev.detail)?.[1])).toBeGreaterThan(2_000_000_000)
        }
        const html = readFileSync(r.report.replace(/\.json$/, '.html'), 'utf8')
        expect(html).toMatch(/recovery point \(data lost\)<\/td><td>0 keys, 0 revisions/)
        expect(html).toMatch(/backup --accept-data-loss<\/td><td>[\d.]+ s, 30 keys and \d+ revisions lost/)
        expect(html).toMatch(/<h2>Drill history<\/h2>\n<svg[^>]*>.*<circle /s)
        const history = readFileSync(join(r.dir, 'drill-history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
        expect(history).toHaveLength(1)
        expect(history[0]).toMatchObject({ scenario: 'quorum-loss-after-writes', result: 'verified', recoveryPoint: { keysLost: 0 } })
        const labs = join(r.dir, 'labs')
        expect(existsSync(labs) ? readdirSync(labs).filter((f) => !f.endsWith('.lock')) : []).toEqual([])
      } finally {
        rmSync(r.dir, { recursive: true, force: true })
      }
    })
  }
})
