// backup() on a live lab cluster, and proof that its file is an ordinary etcd
// snapshot: plain `etcdctl snapshot restore` (3.4) and `etcdutl snapshot
// restore` (3.5), run here with no etcd-rescue code, give back the same data.
import { afterAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterKill, clusterLoad, clusterStart, sha256Hex, type Lab } from '../../lib/lab/index.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { backup, BACKUP_NAME } from '../../lib/backup/backup.ts'
import { captureUi, gateway, useLab } from '../support/lab.ts'

const started: number[] = []
afterAll(() => {
  for (const pid of started) try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
})

/** A loopback port free now (the kernel's pick, so no fixed port meets one of its ephemeral ones). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** Restores with the plain tool and serves the result from one etcd on loopback. */
async function restorePlain(lab: Lab, file: string) {
  const bin = lab.state.etcd.sourceDir
  const dir = mkdtempSync(join(tmpdir(), 'plain-restore-'))
  const data = join(dir, 'data')
  const port = await freePort()
  const peer = `http://127.0.0.1:${await freePort()}`
  const args = ['snapshot', 'restore', file, '--name', 'plain', '--initial-cluster', `plain=${peer}`, '--initial-advertise-peer-urls', peer, '--data-dir', data]
  if (lab.state.etcd.version.startsWith('3.4')) execFileSync(join(bin, 'etcdctl'), args, { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'pipe' })
  else execFileSync(join(bin, 'etcdutl'), args, { stdio: 'pipe' })
  const log = openSync(join(dir, 'etcd.log'), 'w')
  const etcd = spawn(join(bin, 'etcd'), ['--name', 'plain', '--data-dir', data, '--listen-peer-urls', peer, '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`], { stdio: ['ignore', log, log] })
  closeSync(log)
  started.push(etcd.pid!)
  const client = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try {
      await gateway(client).rangePrefix('/nothing/')
      break
    } catch (err) {
      // Not up after 30 s: say why, from its own log.
      if (i >= 300) throw new Error(`the plain etcd on ${client} did not come up (${(err as Error).message}); its log ends:\n${readFileSync(join(dir, 'etcd.log'), 'utf8').split('\n').slice(-5).join('\n')}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return { client, stop: () => { etcd.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) } }
}

for (const etcd of ['3.4.23', '3.5.30'] as const) {
  describe(`backup on etcd ${etcd}`, () => {
    const ctx = useLab({ hosts: 3, etcd })

    it('saves a verified snapshot from a follower that plain etcd tools restore to the same data', async () => {
      const { lab } = ctx
      await clusterStart(lab)
      const load = await clusterLoad(lab, { keys: 400, seed: `backup-${etcd}` })
      const members = membersOf(loadInventory(lab.paths.inventory)).members
      const out = mkdtempSync(join(tmpdir(), 'backups-'))
      const ui = captureUi()
      const r = await backup({ members, outDir: out, ui, keep: 2 })
      expect(r.file).toMatch(BACKUP_NAME)
      expect(r.revision).toBeGreaterThanOrEqual(400)
      expect(r.snapshot.hasTrailer).toBe(true)
      expect(ui.text()).toMatch(new RegExp(`\\[${r.member}\\] ok: healthy, follower`))

      const plain = await restorePlain(lab, r.file)
      try {
        const kvs = await gateway(plain.client).rangePrefix('/etcd-rescue/load/')
        expect(Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))).toEqual(load.manifest)
      } finally {
        plain.stop()
      }

      // --keep: only this cluster's backups made by this tool are pruned.
      writeFileSync(join(out, 'notes.txt'), 'keep me')
      await backup({ members, outDir: out, ui: captureUi(), keep: 2 })
      await backup({ members, outDir: out, ui: captureUi(), keep: 2 })
      const files = readdirSync(out).sort()
      expect(files.filter((f) => BACKUP_NAME.test(f))).toHaveLength(2)
      expect(files).toContain('notes.txt')
    })

    it('says so when no member is healthy, or the directory is not writable', async () => {
      const { lab } = ctx
      const members = membersOf(loadInventory(lab.paths.inventory)).members
      const ro = mkdtempSync(join(tmpdir(), 'ro-'))
      chmodSync(ro, 0o500)
      // root ignores permission bits, so a path under a regular file is the unwritable directory here.
      writeFileSync(join(ro, 'file'), '')
      await expect(backup({ members, outDir: join(ro, 'file', 'sub'), ui: captureUi() })).rejects.toThrow(/not writable/)
      await clusterKill(lab)
      await expect(backup({ members, outDir: mkdtempSync(join(tmpdir(), 'b-')), ui: captureUi(), connectTimeoutMs: 5000 })).rejects.toMatchObject({ exitCode: 3, message: expect.stringMatching(/no member is healthy/) })
    })
  })
}
