// Ansible is the reference: on every fixture and example inventory, our --list and --host
// must equal ansible-inventory's, and the etcd group's host order (which names members
// etcd1..N) must equal `ansible etcd --list-hosts`. Skipped where ansible-core is not
// installed; CI installs it.
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { hostJson, listJson, loadInventory } from '../../lib/inventory/members.ts'

const run = promisify(execFile)
const haveAnsible = spawnSync('ansible-inventory', ['--version'], { stdio: 'ignore' }).status === 0
const FIXTURES = resolve('test/fixtures/inventory')

const SOURCES = [
  'basic/hosts.ini', 'kubespray/inventory.ini', 'kubespray-yaml/hosts.yaml', 'precedence/hosts', 'ranges.ini',
  'literals.ini', 'legacy-vars.ini', 'ssh-args.ini', 'directory', 'yaml-types.yml', 'nested.yml',
].map((f) => join(FIXTURES, f)).concat([resolve('inventory/example.ini'), resolve('inventory/kubespray/inventory.ini')])

// Bad inputs that Ansible rejects too (with these settings it fails instead of warning).
const BAD = ['semicolon-comment.ini', 'key-without-value.ini', 'host-var-without-value.ini', 'vars-for-undefined-group.ini',
  'unclosed-section.ini', 'children-undefined-group.ini', 'hosts-as-list.yml', 'yaml-syntax.yml'].map((f) => join(FIXTURES, 'bad', f))

// Ansible from an empty directory, with no config file, failing on anything it cannot parse.
const work = mkdtempSync(join(tmpdir(), 'etcd-rescue-ansible-'))
writeFileSync(join(work, 'ansible.cfg'), '')
const env = {
  ...process.env,
  ANSIBLE_CONFIG: join(work, 'ansible.cfg'),
  ANSIBLE_LOCAL_TEMP: join(work, 'tmp'),
  ANSIBLE_HOME: join(work, 'home'),
  ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
  ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: 'true',
  ANSIBLE_NOCOLOR: 'true',
  ANSIBLE_DEPRECATION_WARNINGS: 'false',
}
const ansible = async (cmd: string, args: string[]): Promise<string> =>
  (await run(cmd, args, { cwd: work, env, timeout: 60_000, maxBuffer: 16 << 20 })).stdout

/** At most `n` at a time: ansible-inventory is slow to start and CI has two cores. */
async function limited<T>(tasks: (() => Promise<T>)[], n = 2): Promise<T[]> {
  const out: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < tasks.length) { const i = next++; out[i] = await tasks[i]() }
  }))
  return out
}

// Ours as JSON text parsed back, so marker objects (!unsafe, !vault) compare as printed.
const printed = (v: unknown): unknown => JSON.parse(JSON.stringify(v))

describe.skipIf(!haveAnsible)('the same as ansible-inventory', () => {
  const lists = new Map<string, unknown>()
  const hosts = new Map<string, unknown>() // "source\0host" → --host output
  const order = new Map<string, string[]>() // source → `ansible etcd --list-hosts`
  const badStatus = new Map<string, boolean>()

  beforeAll(async () => {
    const tasks: (() => Promise<void>)[] = []
    for (const source of SOURCES) {
      tasks.push(async () => { lists.set(source, JSON.parse(await ansible('ansible-inventory', ['-i', source, '--list']))) })
      // --host for one host per source, an etcd member where there is one: it is the
      // same code as --list's hostvars, and each call costs half a second.
      const inv = loadInventory(source)
      const host = inv.groups.has('etcd') ? inv.hostsOf('etcd')[0] : [...inv.hosts.keys()].at(-1)!
      tasks.push(async () => { hosts.set(`${source}\0${host}`, JSON.parse(await ansible('ansible-inventory', ['-i', source, '--host', host]))) })
      if (inv.groups.has('etcd')) {
        tasks.push(async () => {
          const out = await ansible('ansible', ['-i', source, 'etcd', '--list-hosts'])
          order.set(source, out.split('\n').slice(1).map((l) => l.trim()).filter(Boolean))
        })
      }
    }
    for (const source of BAD) {
      tasks.push(async () => {
        badStatus.set(source, await ansible('ansible-inventory', ['-i', source, '--list']).then(() => true, () => false))
      })
    }
    await limited(tasks)
  }, 300_000)

  it.each(SOURCES.map((s) => [s.replace(`${resolve('.')}/`, ''), s]))('--list %s', (_name, source) => {
    expect(printed(listJson(loadInventory(source)))).toEqual(lists.get(source))
  })

  it.each(SOURCES.map((s) => [s.replace(`${resolve('.')}/`, ''), s]))('--host %s', (_name, source) => {
    const inv = loadInventory(source)
    const checked = [...hosts.keys()].filter((k) => k.startsWith(`${source}\0`))
    expect(checked.length).toBeGreaterThan(0)
    for (const key of checked) expect(printed(hostJson(inv, key.split('\0')[1]))).toEqual(hosts.get(key))
  })

  it.each(SOURCES.filter((s) => loadInventory(s).groups.has('etcd')).map((s) => [s.replace(`${resolve('.')}/`, ''), s]))(
    'etcd host order %s', (_name, source) => {
      expect(loadInventory(source).hostsOf('etcd')).toEqual(order.get(source))
    })

  it.each(BAD.map((s) => [s.replace(`${FIXTURES}/`, ''), s]))('Ansible rejects %s too', (_name, source) => {
    expect(badStatus.get(source)).toBe(false)
    expect(() => loadInventory(source)).toThrow()
  })
})
