// scripts/lab.mjs as an operator runs it: bad input is exit code 2 with a clear
// message and nothing changed; a one-host lab goes up, runs etcd, comes down.
import { afterAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const zx = join(repo, 'node_modules/.bin/zx')
const dir = mkdtempSync(join(tmpdir(), 'etcd-rescue-lab-cli-'))
const randomName = () => `c${randomBytes(4).toString('hex').slice(0, 7)}`

function lab(args: string[], options: { asUser?: number } = {}) {
  const argv = [zx, join(repo, 'scripts/lab.mjs'), ...args]
  // Another user cannot enter a checkout that lives in a 0700 dir (cloned as root
  // into /root/x, say): it runs the same checkout bind-mounted at a path it can
  // reach, in a mount namespace of its own that ends with it.
  let view = ''
  if (options.asUser !== undefined) {
    view = mkdtempSync(join(tmpdir(), 'repo-view-'))
    chmodSync(view, 0o755)
  }
  const [file, ...rest] = options.asUser === undefined
    ? argv
    : ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"', 'sh', repo, view,
        'setpriv', `--reuid=${options.asUser}`, `--regid=${options.asUser}`, '--clear-groups', 'env', 'HOME=/tmp',
        join(view, 'node_modules/.bin/zx'), join(view, 'scripts/lab.mjs'), ...args]
  const r = spawnSync(file, rest, { cwd: repo, encoding: 'utf8', env: { ...process.env, ETCD_RESCUE_LAB_DIR: dir }, timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const netns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
const links = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })

afterAll(() => {
  for (const name of existsSync(dir) ? readdirSync(dir) : []) lab(['down', '--name', name])
  rmSync(dir, { recursive: true, force: true })
})

describe('lab.mjs bad input', () => {
  it.each([
    [['up', '--hosts', '0'], /--hosts must be a whole number from 1 to 9, got 0/],
    [['up', '--hosts', '10'], /--hosts must be a whole number from 1 to 9/],
    [['up', '--etcd', '3.6.1'], /unknown etcd version "3.6.1"\n {2}hint: The lab runs 3.4.23, 3.5.16, 3.5.30/],
    [['up', '--name', 'Bad-Name'], /invalid lab name "Bad-Name"/],
    [['up', '--name', 'waytoolong'], /invalid lab name/],
    [['up', '--disk', 'huge'], /invalid --disk "huge"/],
    [['up', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['explode'], /unknown command "explode"/],
    [['cluster', 'load', '--name', 'nolab', '--keys', '5'], /no lab "nolab" is up here/],
  ])('%j exits 2 and changes nothing', (args, message) => {
    const r = lab(args)
    expect(r.stderr).toMatch(message)
    expect(r.code).toBe(2)
    expect(readdirSync(dir)).toEqual([])
  })

  it('refuses a user other than root', () => {
    const r = lab(['up', '--name', 'nonroot'], { asUser: 65534 })
    expect(r.stderr).toMatch(/the lab needs root/)
    expect(r.code).toBe(2)
  })

  it('refuses a name whose namespaces another lab made, and down leaves them alone', () => {
    const name = randomName()
    execFileSync('ip', ['netns', 'add', `er-${name}-h1`])
    try {
      const r = lab(['up', '--name', name])
      expect(r.stderr).toMatch(new RegExp(`the name "${name}" is taken by a lab this directory did not make \\(netns er-${name}-h1\\)`))
      expect(r.code).toBe(2)
      expect(existsSync(join(dir, name))).toBe(false)
      expect(links()).not.toContain(`er-${name}`)
      const down = lab(['down', '--name', name])
      expect(down.code).toBe(0)
      expect(down.stdout).toMatch(/left alone, not made by a lab here: netns er-\S+-h1/)
      expect(netns()).toContain(`er-${name}-h1`)
    } finally {
      execFileSync('ip', ['netns', 'del', `er-${name}-h1`])
    }
  })

  it('explains itself with --help, including where outputs go', () => {
    const r = lab(['--help'])
    expect(r.code).toBe(0)
    for (const word of ['up', 'down', 'status', 'cluster start', 'cluster load', '--hosts', '--etcd', '--disk', '--name', 'known_hosts', 'inventory.ini', '.lab']) {
      expect(r.stdout).toContain(word)
    }
  })
})

describe('lab.mjs round trip', () => {
  it('up, status, cluster start/load/stop, down on one host', () => {
    const name = randomName()
    const up = lab(['up', '--name', name, '--hosts', '1', '--disk', '256M'])
    expect(up.code, up.stderr).toBe(0)
    expect(up.stdout).toContain(`lab "${name}" is up: 1 host(s), etcd 3.4.23`)
    for (const file of ['id_ed25519', 'known_hosts', 'inventory.ini']) expect(up.stdout).toContain(join(dir, name, file))

    const again = lab(['up', '--name', name])
    expect(again.stdout).toContain('is already up')
    expect(lab(['up', '--name', name, '--hosts', '2']).code).toBe(2)

    const start = lab(['cluster', 'start', '--name', name])
    expect(start.code, start.stderr).toBe(0)
    expect(start.stdout).toMatch(/etcd cluster healthy on 1 member/)
    const load = lab(['cluster', 'load', '--name', name, '--keys', '20', '--seed', 'cli'])
    expect(load.code, load.stderr).toBe(0)
    expect(load.stdout).toMatch(/wrote 20 keys/)
    expect(existsSync(join(dir, name, 'load-manifest.json'))).toBe(true)

    const status = lab(['status', '--name', name])
    expect(status.stdout).toMatch(new RegExp(`${name}-h1 +198\\.18\\.\\d+\\.11 +up \\(PID 1 = \\d+\\) +ssh ok +etcd1 healthy`))
    expect(lab(['cluster', 'stop', '--name', name]).stdout).toMatch(new RegExp(`${name}-h1: stopped etcd \\(PID \\d+\\)`))

    const down = lab(['down', '--name', name])
    expect(down.code, down.stderr).toBe(0)
    expect(down.stdout).toContain(`lab "${name}" is down`)
    expect(netns()).not.toContain(`er-${name}-`)
    expect(links()).not.toContain(`er-${name}`)
    expect(existsSync(join(dir, name))).toBe(false)
    expect(lab(['down', '--name', name]).stdout).toContain('nothing to do')
  })
})

describe('lab.mjs up --disk-dir', () => {
  it('puts the host\'s writes on the machine\'s disk in DIR/NAME/h1, refuses a dir it did not make, and down removes it', () => {
    const name = randomName()
    const disks = mkdtempSync(join(tmpdir(), 'etcd-rescue-lab-disks-'))
    try {
      const up = lab(['up', '--name', name, '--hosts', '1', '--disk-dir', disks])
      expect(up.code, up.stderr).toBe(0)
      const ssh = (cmd: string) => execFileSync('ssh', ['-F', 'none', '-i', join(dir, name, 'id_ed25519'), '-o', 'BatchMode=yes',
        '-o', `UserKnownHostsFile=${join(dir, name, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', `root@${up.stdout.match(/198\.18\.\d+\.11/)![0]}`, cmd], { encoding: 'utf8' })
      ssh('echo on-disk > /var/tmp/marker')
      expect(execFileSync('cat', [join(disks, name, 'h1', 'upper', 'var', 'tmp', 'marker')], { encoding: 'utf8' })).toBe('on-disk\n')
      expect(lab(['down', '--name', name]).code).toBe(0)
      expect(existsSync(join(disks, name))).toBe(false)

      // A directory of that name that this lab did not make: refused, and left alone.
      const other = randomName()
      mkdirSync(join(disks, other))
      const refused = lab(['up', '--name', other, '--hosts', '1', '--disk-dir', disks])
      expect(refused.code).toBe(2)
      expect(refused.stderr).toMatch(/exists already/)
      expect(existsSync(join(disks, other))).toBe(true)
      expect(netns()).not.toContain(`er-${other}-`)
    } finally {
      rmSync(disks, { recursive: true, force: true })
    }
  })
})
