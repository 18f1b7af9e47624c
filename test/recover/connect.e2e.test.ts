// recover.mjs reaching the lab the way Ansible would, through a HOME of the test's own:
// an inventory of bare host aliases, everything else in ~/.ssh/config (then in
// ~/.ansible.cfg), a --check and a real recovery each. And ssh configs it cannot use:
// exit 2 naming file and line, with no host contacted (every sshd's log unchanged).
import { describe, expect, it } from 'vitest'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterKill, clusterLoad, clusterStart, type Lab } from '../../lib/lab/index.ts'
import { hostPaths } from '../../lib/lab/paths.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { backup } from '../../lib/backup/backup.ts'
import { sha256Hex } from '../../lib/lab/load.ts'
import { captureUi, gateway, useLab } from '../support/lab.ts'
import { runScript } from '../support/cli.ts'

const ALIASES = ['etcd-a', 'etcd-b', 'etcd-c']

/** A HOME holding the lab's key and known_hosts under ~/.ssh, and an inventory of aliases. */
function home(lab: Lab): string {
  const dir = mkdtempSync(join(tmpdir(), 'connect-home-'))
  mkdirSync(join(dir, '.ssh'), { mode: 0o700 })
  copyFileSync(lab.paths.privateKey, join(dir, '.ssh', 'id_lab'))
  // known_hosts where ssh looks by default, so no setting names it.
  copyFileSync(lab.paths.knownHosts, join(dir, '.ssh', 'known_hosts'))
  // The lab's etcd layout ([etcd:vars]), but no connection variable at all.
  const vars = readFileSync(lab.paths.inventory, 'utf8').split('[etcd:vars]')[1]
  writeFileSync(join(dir, 'hosts.ini'), `[etcd]\n${ALIASES.join('\n')}\n\n[etcd:vars]${vars}`)
  return dir
}

const hostNames = (lab: Lab): string => ALIASES.map((a, i) => `Host ${a}\n  HostName ${lab.state.hosts[i].address}\n`).join('')

function recoverCli(homeDir: string, args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: homeDir, CI: 'true' }
  delete env.SSH_AUTH_SOCK // the keys named by the configs, nothing else
  delete env.ANSIBLE_CONFIG
  return runScript('recover', args, { env })
}

async function prepare(lab: Lab, wipe: boolean) {
  await clusterStart(lab, { wipe })
  const load = await clusterLoad(lab, { keys: 200, seed: `${lab.name}-${wipe}` })
  const members = membersOf(loadInventory(lab.paths.inventory)).members
  const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'connect-backup-')), ui: captureUi() })
  return { manifest: load.manifest, members, snapshot: b.file }
}

async function expectAllKeys(members: Array<{ name: string; clientUrl: string }>, manifest: Record<string, string>) {
  for (const m of members) {
    const kvs = await gateway(m.clientUrl).rangePrefix('/etcd-rescue/load/', { serializable: true })
    const got = Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))
    expect(got, `${m.name} values`).toEqual(manifest)
  }
}

const sshdLogs = (lab: Lab): string[] => lab.state.hosts.map((_, i) => readFileSync(hostPaths(lab.paths, i + 1).console, 'utf8'))

describe('recover with the connection in ~/.ssh/config and ansible.cfg (3 hosts)', () => {
  const ctx = useLab({ hosts: 3 })

  it('an inventory of aliases, everything else in ~/.ssh/config: --check, then a recovery', async () => {
    const { lab } = ctx
    const { manifest, members, snapshot } = await prepare(lab, false)
    const dir = home(lab)
    writeFileSync(join(dir, '.ssh', 'config'), `${hostNames(lab)}
Host etcd-*
  User root
  IdentityFile ~/.ssh/id_lab
  IdentitiesOnly yes
  StrictHostKeyChecking yes
`)
    const before = sshdLogs(lab)
    const check = recoverCli(dir, ['-i', join(dir, 'hosts.ini'), '-s', snapshot, '-C'])
    expect(check.status, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toMatch(/initial cluster +etcd1=http:\/\/198\.18\.\d+\.\d+:2380,etcd2=/)
    // Each sshd logged the logins (what the refusals below must not cause).
    sshdLogs(lab).forEach((log, i) => expect(log, `host ${i + 1}`).not.toBe(before[i]))

    const run = recoverCli(dir, ['-i', join(dir, 'hosts.ini'), '-s', snapshot, '-y', '--plain'])
    expect(run.status, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/recovered and verified: 3 members/)
    await expectAllKeys(members, manifest)
  })

  it('the same with ~/.ansible.cfg naming the inventory, the user and the key', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { manifest, members, snapshot } = await prepare(lab, true)
    const dir = home(lab)
    writeFileSync(join(dir, '.ssh', 'config'), hostNames(lab))
    writeFileSync(join(dir, '.ansible.cfg'), `[defaults]
inventory = ~/hosts.ini
remote_user = root
private_key_file = ~/.ssh/id_lab
forks = 2
`)
    const check = recoverCli(dir, ['-s', snapshot, '-C'])
    expect(check.status, check.stdout + check.stderr).toBe(0)

    const run = recoverCli(dir, ['-s', snapshot, '-y', '--plain'])
    expect(run.status, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/recovered and verified: 3 members/)
    await expectAllKeys(members, manifest)
  })

  it.each([
    ['a line that does not parse', 'Host etcd-*\n  User root\n  IdentityFile "~/.ssh/id_lab\n', 3, /does not parse/],
    ['a Match block', 'Host etcd-*\n  User root\nMatch user root\n  IdentityFile ~/.ssh/id_lab\n', 3, /`Match` blocks are not supported/],
  ])('refuses an ssh config with %s: exit 2, file and line named, no host contacted', (_what, text, line, message) => {
    const { lab } = ctx
    const dir = home(lab)
    const config = join(dir, '.ssh', 'config')
    writeFileSync(config, `${hostNames(lab)}${text}`)
    const before = sshdLogs(lab)
    const r = recoverCli(dir, ['-i', join(dir, 'hosts.ini'), '-s', join(dir, 'no-snapshot-needed.db'), '-C'])
    expect(r.status, r.stdout + r.stderr).toBe(2)
    expect(r.stderr).toContain(`${config}:${ALIASES.length * 2 + line}:`)
    expect(r.stderr).toMatch(message)
    expect(sshdLogs(lab)).toEqual(before)
  })
})
