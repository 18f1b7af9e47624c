// The conditions of a real fleet that the default lab does not have: every
// remote command paying for a busy login shell, and a rate-limited link. A
// recovery must still end verified there (timings are measured by the bench,
// never asserted here).
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterLoad, clusterStart, sha256Hex } from '../../lib/lab/index.ts'
import { labLink, labLogin } from '../../lib/lab/shape.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { backup } from '../../lib/backup/backup.ts'
import { recover } from '../../lib/recover/recover.ts'
import { sh } from '../../lib/shell/sh.ts'
import { captureUi, gateway, onHost, useLab } from '../support/lab.ts'

describe('recover on busy hosts behind a slow link (3 hosts, etcd 3.5.30)', () => {
  const ctx = useLab({ hosts: 3, etcd: '3.5.30' })

  it('ends verified with every key, and the conditions come off again', async () => {
    const { lab } = ctx
    await clusterStart(lab)
    const load = await clusterLoad(lab, { keys: 300, seed: lab.name })
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'busy-backup-')), ui: captureUi() })

    await labLogin(lab, 'busy')
    await labLogin(lab, 'busy') // idempotent: one block, not two
    await labLink(lab, '100mbit')
    for (const i of [1, 2, 3]) expect((await onHost(lab, i, sh`grep -c 'etcd-rescue lab login cost' /root/.bashrc`)).trim()).toBe('2')
    // The operator's side of the bridge is shaped, not the hosts' veths (host to host stays fast).
    const bridge = lab.state.bridge!
    const veth = lab.state.hosts[0].veth!
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', bridge]).toString()).toMatch(/tbf .*rate 100Mbit/)
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', veth]).toString()).not.toMatch(/tbf/)

    const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
    expect(r.exitCode, r.message).toBe(0)
    for (const m of members) {
      expect(r.remoteCommands[m.name], m.name).toBeGreaterThan(0)
      const kvs = await gateway(m.clientUrl).rangePrefix('/etcd-rescue/load/', { serializable: true })
      expect(Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)])), m.name).toEqual(load.manifest)
    }

    await labLogin(lab, 'fast')
    await labLink(lab, 'none')
    for (const i of [1, 2, 3]) expect((await onHost(lab, i, sh`grep -c 'etcd-rescue lab login cost' /root/.bashrc || true`)).trim()).toBe('0')
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', bridge]).toString()).not.toMatch(/tbf/)
  })
})
