// `npm run bench` end to end on a small lab, so that the benchmark behind the
// README's numbers keeps working from a fresh clone: both methods recover the
// same disaster (the expert's script to healthy, etcd-rescue to verified), and
// the JSON and Markdown it writes hold what the README's tables are made from.
// No timing is asserted: the bench measures, this checks that it can.
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runScript } from '../support/cli.ts'
import type { BenchResult } from '../../lib/bench/bench.ts'

const labDir = mkdtempSync(join(tmpdir(), 'etcd-rescue-bench-labs-'))
const out = mkdtempSync(join(tmpdir(), 'etcd-rescue-bench-out-'))

afterAll(() => {
  // A lab left by a failed run is taken down by name, never by a broad match.
  for (const name of existsSync(labDir) ? readdirSync(labDir) : []) runScript('lab', ['down', '--name', name], { env: { ...process.env, CI: 'true', ETCD_RESCUE_LAB_DIR: labDir }, timeoutSeconds: 60 })
  rmSync(labDir, { recursive: true, force: true })
  rmSync(out, { recursive: true, force: true })
})

describe('npm run bench', () => {
  it('runs both methods on one lab, alternating, and writes JSON and Markdown; the lab is gone after', () => {
    const json = join(out, 'bench.json')
    const md = join(out, 'bench.md')
    const r = runScript('bench', ['--hosts', '3', '--size', '8MB', '--rounds', '2', '--json', json, '--markdown', md], {
      env: { ...process.env, CI: 'true', ETCD_RESCUE_LAB_DIR: labDir },
      timeoutSeconds: 240,
    })
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult
    // Alternating: round 1 expert first, round 2 etcd-rescue first.
    expect(result.rounds.map((x) => `${x.round} ${x.method}`)).toEqual(['1 manual', '1 etcd-rescue', '2 etcd-rescue', '2 manual'])
    expect(result).toMatchObject({ hosts: 3, data: 'random', login: 'fast', link: 'unlimited', etcdVersion: '3.5.30' })
    for (const round of result.rounds) {
      expect(round.seconds, JSON.stringify(round)).toBeGreaterThan(0)
      expect(round.note).toMatch(round.method === 'manual' ? /^healthy/ : /^verified \(\d+ checks\)/)
      // Each method says when every member had its restored data and when the cluster was up.
      expect(round.inPlaceSeconds, JSON.stringify(round)).toBeGreaterThan(0)
      expect(round.doneSeconds!, JSON.stringify(round)).toBeGreaterThan(round.inPlaceSeconds!)
    }
    // etcd-rescue starts one command per host (its session); the expert one per step and host.
    const commands = (m: string) => result.rounds.filter((x) => x.method === m).map((x) => x.remoteCommands)
    expect(commands('etcd-rescue')).toEqual([3, 3])
    expect(Math.min(...commands('manual'))).toBeGreaterThan(3)
    expect(result.ratio).toBeCloseTo(result.rescueMedian / result.manualMedian, 10)
    expect(result.peakRssBytes).toBeGreaterThan(0)
    expect(result.copy.sshCatMBps).toBeGreaterThan(0)
    const table = readFileSync(md, 'utf8')
    expect(table).toContain('| expert by hand (OpenSSH) |')
    expect(table).toContain('| etcd-rescue |')
    expect(table).toMatch(/Ratio etcd-rescue \/ expert: \*\*\d+\.\d\d\*\*/)
    // The bench's lab is down: its state dir gone, so no namespace of it is left.
    expect(readdirSync(labDir)).toEqual([])
  })
})
