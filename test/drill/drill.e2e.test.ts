// `npm run drill` for real: a lab, a cluster, a data set, a backup, a disaster,
// the recovery, every key checked. Each run makes and removes its own lab in
// its own directory.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { drill } from '../../lib/drill/drill.ts'
import { clusterStart } from '../../lib/lab/index.ts'
import { captureUi, useLab } from '../support/lab.ts'

function npmDrill(args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'drill-'))
  const report = join(dir, 'drill.json')
  // The README's command, under GNU timeout: it signals the whole process group, so a
  // drill that overruns ends instead of outliving the test with its connections.
  const r = spawnSync('timeout', ['-k', '30', '600', 'npm', 'run', 'drill', '--', '--report', report, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', ETCD_RESCUE_LAB_DIR: join(dir, 'labs') },
  })
  return { ...r, dir, report }
}

function labsLeft(dir: string): string[] {
  const labs = join(dir, 'labs')
  return existsSync(labs) ? spawnSync('ls', ['-A', labs], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l && !l.endsWith('.lock')) : []
}

describe('npm run drill', () => {
  for (const etcd of ['3.4.23', '3.5.30']) {
    it(`recovers from total loss and verifies every key, etcd ${etcd}`, () => {
      const r = npmDrill(['--etcd', etcd, '--keys', '1500'])
      try {
        expect(r.status, r.stdout + r.stderr).toBe(0)
        expect(r.stdout).toMatch(/Drill total-loss: VERIFIED/)
        const report = JSON.parse(readFileSync(r.report, 'utf8'))
        expect(report.result).toBe('verified')
        expect(report.etcdVersion).toBe(etcd)
        expect(report.keysWritten).toBe(1500)
        expect(report.keysChecked).toBe(report.keysWritten)
        expect(report.rtoSeconds).toBeGreaterThan(0)
        expect(report.snapshot.revision).toBeGreaterThanOrEqual(1500)
        const hosts = new Set(report.phases.map((p: { host: string }) => p.host))
        for (const m of ['etcd1', 'etcd2', 'etcd3']) expect(hosts.has(m)).toBe(true)
        for (const phase of ['copy', 'restore', 'stop', 'swap', 'start', 'quorum', 'verify keys']) {
          expect(report.phases.some((p: { name: string }) => p.name === phase), phase).toBe(true)
        }
        const html = readFileSync(r.report.replace(/\.json$/, '.html'), 'utf8')
        for (const m of ['etcd1', 'etcd2', 'etcd3']) expect(html).toContain(`>${m}</text>`)
        expect(html).toMatch(/<svg[^>]*>.*<rect /s)
        const history = readFileSync(join(r.dir, 'drill-history.jsonl'), 'utf8').trim().split('\n')
        expect(history).toHaveLength(1)
        expect(JSON.parse(history[0])).toMatchObject({ scenario: 'total-loss', result: 'verified', keysChecked: 1500 })
        expect(labsLeft(r.dir)).toEqual([])
      } finally {
        rmSync(r.dir, { recursive: true, force: true })
      }
    })
  }
})

describe('drill scenarios', () => {
  const labDir = mkdtempSync(join(tmpdir(), 'etcd-rescue-drill-labs-'))
  const backupDir = mkdtempSync(join(tmpdir(), 'drill-backups-'))

  it('quorum loss: survivors are stopped and restored too', async () => {
    const ui = captureUi()
    const r = await drill({ scenario: 'quorum-loss', keys: 300, labDir, backupDir, ui })
    expect(r.result, `${r.error}\n${ui.text()}`).toBe('verified')
    expect(r.keysChecked).toBe(300)
    // etcd3 survived the disaster and was still running when recovery began.
    expect(ui.text()).toMatch(/\[etcd3\] stop ok in [\d.]+ s: stopped pid \d+/)
  })

  it('corrupt-snapshot: refused with exit 2 before anything is touched', async () => {
    const ui = captureUi()
    const r = await drill({ scenario: 'corrupt-snapshot', keys: 200, labDir, backupDir, ui })
    expect(r.result, `${r.error}\n${ui.text()}`).toBe('verified')
    expect(r.recovery?.exitCode).toBe(2)
    expect(r.actual).toMatch(/recover exited 2 .* hosts unchanged/)
    expect(r.keysChecked).toBe(200)
  })

  it('unreachable-host: refused with exit 3 before any change', async () => {
    const ui = captureUi()
    const r = await drill({ scenario: 'unreachable-host', keys: 200, labDir, backupDir, ui })
    expect(r.result, `${r.error}\n${ui.text()}`).toBe('verified')
    expect(r.recovery?.exitCode).toBe(3)
    expect(r.recovery?.message).toMatch(/etcd3/)
    expect(r.keysChecked).toBe(200)
  })

  it('refuses a staging inventory that does not allow drills', async () => {
    const r = await drill({ inventory: 'inventory/example.ini', yes: true, backupDir, ui: captureUi() })
    expect(r.result).toBe('failed')
    expect(r.error).toMatch(/etcd_drill_allowed/)
  })
})

describe('drill on a staging inventory', () => {
  const ctx = useLab({ hosts: 3 })

  it('runs on an inventory that allows drills, with --yes', async () => {
    await clusterStart(ctx.lab)
    const dir = mkdtempSync(join(tmpdir(), 'staging-'))
    const inventory = join(dir, 'staging.ini')
    writeFileSync(inventory, readFileSync(ctx.lab.paths.inventory, 'utf8').replace('[etcd:vars]\n', '[etcd:vars]\netcd_drill_allowed=True\n'))
    const ui = captureUi()
    const refused = await drill({ inventory, backupDir: join(dir, 'b'), ui: captureUi() })
    expect(refused.error).toMatch(/--yes/)
    const r = await drill({ inventory, yes: true, keys: 200, backupDir: join(dir, 'b'), ui })
    expect(r.result, `${r.error}\n${ui.text()}`).toBe('verified')
    expect(r.target).toMatchObject({ kind: 'inventory', hosts: 3 })
    expect(r.keysChecked).toBe(200)
  })
})
