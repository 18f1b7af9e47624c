// Issue 11 on real sshd and etcd: writes made after the backup survive on a
// member; restoring the backup over it is refused (nothing changed, the member
// named), --accept-data-loss goes ahead and says what was lost, and
// --from-survivors brings every write back, from a running survivor and from a
// stopped one.
import { describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { clusterKill, clusterLoad, clusterStart, type Lab } from '../../lib/lab/index.ts'
import { loadInventory, membersOf, type Member } from '../../lib/inventory/members.ts'
import { recover } from '../../lib/recover/recover.ts'
import { backup } from '../../lib/backup/backup.ts'
import { writeDataset } from '../../lib/drill/dataset.ts'
import { sha256Hex } from '../../lib/lab/load.ts'
import { directGateway } from '../../lib/etcd/gateway.ts'
import { sh } from '../../lib/shell/sh.ts'
import { captureUi, gateway, onHost, useLab, fingerprint } from '../support/lab.ts'
import { runRecover } from '../support/cli.ts'

const BEFORE = '/s/before/'
const AFTER = '/s/after/'

/** A cluster with keys, a backup of it, then more writes the backup does not hold. */
async function writesAfterBackup(lab: Lab, tag: string) {
  await clusterKill(lab)
  await clusterStart(lab, { wipe: true })
  const before = await clusterLoad(lab, { keys: 150, seed: `${tag}-before`, prefix: BEFORE })
  const members = membersOf(loadInventory(lab.paths.inventory)).members
  const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'surv-backup-')), ui: captureUi() })
  const after = await clusterLoad(lab, { keys: 60, seed: `${tag}-after`, prefix: AFTER })
  // What etcd says, not what the load counted: a retried put may have landed twice.
  return { members, snapshot: b.file, snapshotRevision: b.revision, before: before.manifest, after: after.manifest, lastRevision: await revisionOf(members[2]) }
}

/** A member's current revision, from its own status (answers without quorum too). */
async function revisionOf(m: Member): Promise<number> {
  const st = await gateway(m.clientUrl).post<{ header: { revision: string } }>('/v3/maintenance/status', {})
  return Number(st.header.revision)
}

/** Keys under `prefix`, read from each member alone, equal to `manifest` (empty: none there). */
async function expectKeys(members: Member[], prefix: string, manifest: Record<string, string>) {
  for (const m of members) {
    const kvs = await gateway(m.clientUrl).rangePrefix(prefix, { serializable: true })
    const got = Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))
    expect(got, `${m.name} under ${prefix}`).toEqual(manifest)
  }
}

/** Members whose host is gone for good: etcd killed, its member dir removed. */
async function loseMembers(lab: Lab, hosts: number[]) {
  await clusterKill(lab, { hosts })
  for (const i of hosts) await onHost(lab, i, 'rm -rf /var/lib/etcd/member')
}

const runCli = (args: string[]) => runRecover(args)

for (const version of ['3.4.23', '3.5.30']) {
  describe(`survivors on etcd ${version} (3 hosts)`, () => {
    const ctx = useLab({ hosts: 3, ...(version === '3.4.23' ? {} : { etcd: version }) })

    it('refuses to roll a running survivor back, changing nothing; --from-survivors brings every write back', async () => {
      const { lab } = ctx
      const s = await writesAfterBackup(lab, 'refuse')
      // Quorum lost for good: two members and their disks are gone; etcd3 runs alone with the writes made after the backup.
      await loseMembers(lab, [1, 2])
      const before = await fingerprint(s.members)

      const ui = captureUi()
      const refused = await recover({ inventory: lab.paths.inventory, snapshot: s.snapshot, ui })
      expect(refused.exitCode, `${refused.message}\n${ui.text()}`).toBe(3)
      const lost = s.lastRevision - s.snapshotRevision
      expect(lost).toBeGreaterThan(0)
      expect(refused.message).toContain(`etcd3 (running) holds revision ${s.lastRevision}, the snapshot ${s.snapshotRevision}: ${lost} revision(s) would be lost`)
      expect(refused.message).not.toMatch(/etcd[12] \(/)
      expect(refused.message).toMatch(/Nothing was changed/)
      expect(refused.journal.changed()).toBe(false)

      // --check shows the comparison for every member, and refuses the same way.
      const check = runCli(['--inventory', lab.paths.inventory, '--snapshot', s.snapshot, '--check', '--plain'])
      expect(check.status, check.stdout + check.stderr).toBe(3)
      expect(check.stdout).toMatch(/etcd1 +no member data\n/)
      expect(check.stdout).toMatch(new RegExp(`etcd3 +running, revision ${s.lastRevision}, raft index \\d+, cluster [0-9a-f]+ +✖ ${lost} revision\\(s\\) newer`))
      expect(await fingerprint(s.members)).toEqual(before)
      await expectKeys([s.members[2]], AFTER, s.after)

      // --check with --from-survivors: the choice and what every member held, no snapshot taken, nothing changed.
      const dir = mkdtempSync(join(tmpdir(), 'surv-from-'))
      const choose = runCli(['--inventory', lab.paths.inventory, '--from-survivors', '--backup-dir', dir, '--check', '--plain'])
      expect(choose.status, choose.stdout + choose.stderr).toBe(0)
      expect(choose.stdout).toContain(`Recovering from the freshest member, etcd3: the only member with readable data (revision ${s.lastRevision})`)
      expect(choose.stdout).toMatch(/ {3}etcd2: no member data/)
      expect(readdirSync(dir)).toEqual([])
      expect(await fingerprint(s.members)).toEqual(before)

      const ui2 = captureUi()
      const r = await recover({ inventory: lab.paths.inventory, fromSurvivors: true, backupDir: dir, ui: ui2 })
      expect(r.exitCode, `${r.message}\n${ui2.text()}`).toBe(0)
      expect(r.fromSurvivors?.choice.chosen).toMatchObject({ member: 'etcd3', state: 'running', revision: s.lastRevision })
      expect(r.fromSurvivors?.choice.reason).toBe(`the only member with readable data (revision ${s.lastRevision})`)
      expect(ui2.text()).toMatch(/→ etcd3: running, revision \d+/)
      expect(ui2.text()).toMatch(/ {3}etcd1: no member data/)
      const kept = r.fromSurvivors!.snapshot!
      expect(kept.raw).toBe(false)
      expect(basename(kept.path)).toMatch(new RegExp(`^[0-9a-f]+-\\d{8}T\\d{6}Z-rev${s.lastRevision}\\.db$`))
      expect(existsSync(kept.path)).toBe(true)
      expect(r.survivors?.newer).toEqual([])
      await expectKeys(s.members, BEFORE, s.before)
      await expectKeys(s.members, AFTER, s.after)
    })

    it('--accept-data-loss restores the backup anyway and says what was given up', async () => {
      const { lab } = ctx
      const s = await writesAfterBackup(lab, 'accept')
      await loseMembers(lab, [1, 2])
      const lost = s.lastRevision - s.snapshotRevision
      const report = join(mkdtempSync(join(tmpdir(), 'surv-report-')), 'r.json')
      const r = runCli(['--inventory', lab.paths.inventory, '--snapshot', s.snapshot, '--accept-data-loss', '--yes', '--plain', '--report', report])
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toContain(`data given up (--accept-data-loss): etcd3 held revision ${s.lastRevision}, ${lost} revision(s) past the snapshot`)
      const json = JSON.parse(readFileSync(report, 'utf8'))
      expect(json.survivors).toMatchObject({ snapshotRevision: s.snapshotRevision, acceptedDataLoss: true, revisionsLost: lost, givenUp: [{ member: 'etcd3', revision: s.lastRevision, revisionsLost: lost }] })
      await expectKeys(s.members, BEFORE, s.before)
      await expectKeys(s.members, AFTER, {})
    })

    it('--from-survivors recovers from a stopped member, from a copy of its database', async () => {
      const { lab } = ctx
      const s = await writesAfterBackup(lab, 'stopped')
      // etcd1 goes first; etcd2 and etcd3 take more writes, then both stop: no etcd runs anywhere.
      await clusterKill(lab, { hosts: [1] })
      const more = await writeDataset([gateway(s.members[1].clientUrl)], { keys: 40, seed: 'stopped-more', prefix: '/s/more/' })
      const freshest = await revisionOf(s.members[1])
      await new Promise((r) => setTimeout(r, 1000)) // etcd commits its database every 100 ms
      await clusterKill(lab, { hosts: [2, 3] })
      const dir = mkdtempSync(join(tmpdir(), 'surv-from-'))
      const ui = captureUi()
      const r = await recover({ inventory: lab.paths.inventory, fromSurvivors: true, backupDir: dir, ui })
      expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
      expect(r.fromSurvivors?.choice.chosen).toMatchObject({ member: 'etcd2', state: 'stopped', revision: freshest })
      expect(r.fromSurvivors?.choice.reason).toBe(`revision ${freshest} like etcd3; first in the inventory`)
      expect(r.fromSurvivors?.choice.held.find((d) => d.member === 'etcd1')?.revision).toBeLessThan(freshest)
      expect(r.fromSurvivors?.snapshot?.raw).toBe(true)
      // Preflight left no copy of a database behind on any host.
      for (const i of [1, 2, 3]) expect(await onHost(lab, i, 'ls -a /var/lib/ /var/lib/.etcd-rescue-etcd/ 2>/dev/null | grep -c held || true')).toMatch(/^0/)
      await expectKeys(s.members, BEFORE, s.before)
      await expectKeys(s.members, AFTER, s.after)
      await expectKeys(s.members, '/s/more/', Object.fromEntries(more.digests))
    })
  })
}

describe('survivors on kubespray-style members: systemd, TLS, sudo, etcd 3.5.30', () => {
  const ctx = useLab({ hosts: 3, init: 'systemd', tls: true, sudo: 'nopasswd', etcd: '3.5.30' })
  /** A member's gateway over TLS with the lab's copy of that host's admin certificate. */
  const tls = (i: number) => {
    const h = ctx.lab.state.hosts[i - 1]
    const pki = ctx.lab.paths.pki
    return directGateway(`https://${h.address}:2379`, { ca: join(pki, 'ca.pem'), cert: join(pki, `admin-${h.name}.pem`), key: join(pki, `admin-${h.name}-key.pem`) })
  }
  const keysOn = async (i: number, prefix: string) => Object.fromEntries((await tls(i).rangePrefix(prefix, { serializable: true })).map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))

  it('names the running TLS survivor and refuses; --from-survivors snapshots it over TLS and brings every write back', async () => {
    const { lab } = ctx
    const before = await clusterLoad(lab, { keys: 100, seed: 'sd-before', prefix: BEFORE })
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'sd-surv-')), ui: captureUi() })
    const after = await clusterLoad(lab, { keys: 40, seed: 'sd-after', prefix: AFTER })
    for (const i of [2, 3]) await onHost(lab, i, sh`systemctl stop etcd && rm -rf /var/lib/etcd/member`)
    const survivorRevision = Number((await tls(1).post<{ header: { revision: string } }>('/v3/maintenance/status', {})).header.revision)

    const ui = captureUi()
    const refused = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui })
    expect(refused.exitCode, `${refused.message}\n${ui.text()}`).toBe(3)
    expect(refused.message).toContain(`etcd1 (running) holds revision ${survivorRevision}, the snapshot ${b.revision}: ${survivorRevision - b.revision} revision(s) would be lost`)
    expect(refused.journal.changed()).toBe(false)

    const ui2 = captureUi()
    const r = await recover({ inventory: lab.paths.inventory, fromSurvivors: true, backupDir: mkdtempSync(join(tmpdir(), 'sd-from-')), ui: ui2 })
    expect(r.exitCode, `${r.message}\n${ui2.text()}`).toBe(0)
    expect(r.fromSurvivors?.choice.chosen).toMatchObject({ member: 'etcd1', state: 'running', revision: survivorRevision })
    for (const i of [1, 2, 3]) {
      expect(await keysOn(i, BEFORE), `etcd${i} before`).toEqual(before.manifest)
      expect(await keysOn(i, AFTER), `etcd${i} after`).toEqual(after.manifest)
    }
  })
})
