// `lab up`: validate everything, then build the lab, recording each object in
// state.json the moment it exists, so that a failure half way is undone by the
// same code as `down`. Hosts boot in parallel; the subnet is chosen and claimed
// (bridge created) under a machine-wide lock so concurrent `up`s never share one.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { InputError, RescueError, formatError } from '../errors.ts'
import { ensureEtcdBinaries } from './etcd-fetch.ts'
import { DEFAULT_ETCD_VERSION, etcdBinaries, etcdRelease, type EtcdRelease } from './etcd-release.ts'
import { run } from './exec.ts'
import { bootHost, waitForSsh } from './host.ts'
import { knownHosts, sshdConfig, SSHD_CONFIG_PATH } from './host-files.ts'
import { hostInitBase } from './host-init.ts'
import type { HostInitSpec } from './init-script.ts'
import { renderInventory } from './inventory.ts'
import { withLock } from './lock.ts'
import { DEFAULT_LAB_NAME, LAB_DATA_DIR, bridgeName, hostName, memberName, netnsName, validateDiskSize, validateHostCount, validateLabName, vethName } from './names.ts'
import { addBridge, addNetns, addVeth, configureBridge, configureHostNetwork, machineAddresses } from './net.ts'
import { hostPaths, labBaseDir, labDiskDir, labPaths, type LabPaths } from './paths.ts'
import { checkPrerequisites, findProgram } from './prereq.ts'
import { isRunning } from './procs.ts'
import { listLabStates, readState, writeState, STATE_TOOL, STATE_VERSION, type HostState, type LabState } from './state.ts'
import { chooseSubnet, hostAddress } from './subnet.ts'
import { foreignObjects, teardown } from './down.ts'
import { hostCgroup } from './cgroup.ts'
import { makeLabPki } from './tls.ts'
import { systemdHostInit, systemdOptions, waitForUnits, writeKubesprayInventory } from './up-systemd.ts'

export const DEFAULT_HOSTS = 3
export const DEFAULT_DISK = '2G'
/** Machine-wide: serializes subnet choice across labs in any directory. */
const SUBNET_LOCK = '/run/etcd-rescue-lab.lock'

export interface LabUpOptions {
  /** Lab name, 1-8 of [a-z0-9] starting with a letter. Default "lab". */
  name?: string
  /** Number of hosts, 1-9. Default 3 (or the running lab's). */
  hosts?: number
  /** etcd version on the hosts: 3.4.23, 3.5.16 or 3.5.30. Default 3.4.23 (or the running lab's). */
  etcd?: string
  /** Size of each host's disk (tmpfs, RAM-backed, only used pages count). Default 2G. */
  disk?: string
  /**
   * Put the hosts' disks on the machine's own disk instead of RAM: in BASE/NAME/hI
   * (made here, must not exist; removed by `down`). For data that RAM cannot hold
   * (a 1 GB snapshot on 7 hosts). --disk then only sizes the hosts' /tmp.
   */
  diskDir?: string
  /** Directory holding labs' state; default $ETCD_RESCUE_LAB_DIR or <repo>/.lab. */
  dir?: string
  /** PID 1 of each host: tini running sshd (default), or systemd booting a kubespray-like machine. */
  init?: 'tini' | 'systemd'
  /** systemd only: kubespray's TLS certificates, https on client and peer URLs. Default false. */
  tls?: boolean
  /** systemd only: does ops's sudo ask for a password? Default nopasswd. */
  sudo?: 'nopasswd' | 'password'
  /** systemd only: Restart= of etcd.service. Default on-failure. */
  etcdRestart?: 'on-failure' | 'always'
  /**
   * What /bin/sh is on the hosts: the machine's (dash on Debian, the default) or
   * bash, as on RHEL and its kin, Fedora and Amazon Linux (bash started as sh runs
   * in POSIX mode): every remote step runs under it.
   */
  binSh?: 'dash' | 'bash'
  /** Progress lines. Default: silent. */
  log?: (line: string) => void
}

/** A lab that is up, and where its outputs are. */
export interface Lab {
  name: string
  paths: LabPaths
  state: LabState
  /** True when `up` found it already running and changed nothing. */
  alreadyUp: boolean
}

export async function labUp(options: LabUpOptions = {}): Promise<Lab> {
  const log = options.log ?? (() => {})
  const name = validateLabName(options.name ?? DEFAULT_LAB_NAME)
  if (options.hosts !== undefined) validateHostCount(options.hosts)
  const release = options.etcd === undefined ? undefined : etcdRelease(options.etcd)
  const disk = options.disk === undefined ? undefined : validateDiskSize(options.disk)
  const diskDir = options.diskDir === undefined ? undefined : labDiskDir(options.diskDir, name)
  const base = labBaseDir(options.dir)
  const paths = labPaths(base, name)
  const wanted = release ?? etcdRelease(DEFAULT_ETCD_VERSION)
  const systemd = systemdOptions(options)
  if (options.binSh !== undefined && options.binSh !== 'dash' && options.binSh !== 'bash') throw new InputError(`--bin-sh must be dash or bash, got ${JSON.stringify(options.binSh)}`)
  checkPrerequisites({ etcd34: !wanted.suite, fetch: !!wanted.suite, systemd: !!systemd, tls: !!systemd?.tls })

  const existing = readState(paths)
  if (existing) return reportExisting(existing, paths, { hosts: options.hosts, etcd: options.etcd, disk, diskDir, systemd: options.init === undefined ? 'any' : systemd })
  await refuseForeign(name, paths)

  const sourceDir = await ensureEtcdBinaries(wanted, log)
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
  return withLock(`${paths.dir}.lock`, async () => {
    const again = readState(paths) // another `up` of the same name may have won the race
    if (again) return reportExisting(again, paths, { hosts: options.hosts, etcd: options.etcd, disk, diskDir, systemd: options.init === undefined ? 'any' : systemd })
    const state: LabState = {
      tool: STATE_TOOL,
      version: STATE_VERSION,
      name,
      phase: 'creating',
      createdAt: new Date().toISOString(),
      subnet: { k: 0, gateway: '', cidr: '' },
      disk: disk ?? DEFAULT_DISK,
      etcd: { version: wanted.version, binDir: wanted.hostBinDir, sourceDir },
      hosts: [],
      ...(systemd ? { systemd } : {}),
      ...(options.binSh === 'bash' ? { binSh: 'bash' as const } : {}),
    }
    try {
      await build(state, paths, wanted, options.hosts ?? DEFAULT_HOSTS, base, log, diskDir)
    } catch (e) {
      log(`up failed, removing what it made: ${(e as Error).message.split('\n')[0]}`)
      await teardown(state, paths).catch((t: unknown) => log(`could not remove all of it: ${formatError(t)}`))
      throw e
    }
    return { name, paths, state, alreadyUp: false }
  })
}

async function build(state: LabState, paths: LabPaths, release: EtcdRelease, count: number, base: string, log: (line: string) => void, diskDir?: string): Promise<void> {
  const t0 = Date.now()
  writeState(paths, state)
  if (diskDir) {
    // Recorded only once made by this `up` (mkdir fails on an existing one): `down` deletes it.
    mkdirSync(dirname(diskDir), { recursive: true, mode: 0o700 })
    try {
      mkdirSync(diskDir, { mode: 0o700 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      throw new InputError(`${diskDir} exists already; this lab did not make it`, { hint: 'Remove it if it is a lab disk left behind, or use another --name or --disk-dir.' })
    }
    state.diskDir = diskDir
    writeState(paths, state)
    log(`hosts' disks in ${diskDir}`)
  }
  mkdirSync(paths.hostsDir, { recursive: true })
  const hostIndexes = Array.from({ length: count }, (_, k) => k + 1)
  // Keys first (ssh-keygen refuses to overwrite, so clear leftovers).
  const keygen = (file: string, comment: string) => {
    rmSync(file, { force: true })
    rmSync(`${file}.pub`, { force: true })
    return run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
  }
  await Promise.all([
    keygen(paths.privateKey, `etcd-rescue-lab-${state.name}`),
    ...hostIndexes.map((i) => {
      mkdirSync(hostPaths(paths, i).dir, { recursive: true })
      return keygen(hostPaths(paths, i).hostKey, `root@${hostName(state.name, i)}`)
    }),
  ])

  // An object is recorded only once this `up` has created it: a name that turns out
  // to exist already belongs to someone else, and rollback must not delete it.
  await withLock(SUBNET_LOCK, async () => {
    await refuseForeign(state.name, paths) // again, now that no other `up` can be creating them
    const otherKs = listLabStates(base).filter((s) => s.name !== state.name && s.subnet.k > 0).map((s) => s.subnet.k)
    const chosen = chooseSubnet(await machineAddresses(), otherKs)
    if (!chosen) throw new RescueError('every 198.18.K.0/24 (K = 1..254) is in use on this machine', { hint: 'Take a lab down first.' })
    state.subnet = chosen
    await addBridge(bridgeName(state.name))
    state.bridge = bridgeName(state.name)
    writeState(paths, state)
    await configureBridge(state.bridge, chosen.gateway)
  })
  log(`bridge ${state.bridge} ${state.subnet.gateway}/24`)

  state.hosts = hostIndexes.map((i): HostState => ({
    index: i,
    name: hostName(state.name, i),
    member: memberName(i),
    address: hostAddress(state.subnet.k, i),
    dir: hostPaths(paths, i).dir,
  }))
  // Namespaces one at a time: the first `ip netns add` sets up /run/netns and concurrent ones race on it.
  for (const host of state.hosts) {
    await addNetns(netnsName(state.name, host.index))
    host.netns = netnsName(state.name, host.index)
    writeState(paths, state)
  }
  const machineHostKeys = readdirSync('/etc/ssh').filter((f) => f.startsWith('ssh_host_')).map((f) => `/etc/ssh/${f}`)
  if (state.systemd) {
    writeFileSync(paths.becomePassword, `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 })
    if (state.systemd.tls) await makeLabPki(paths.pki, state.hosts)
    for (const host of state.hosts) {
      const cgroup = hostCgroup(state.name, host.index)
      if (existsSync(cgroup)) throw new RescueError(`cgroup ${cgroup} exists already; another lab of this name is running elsewhere`, { hint: 'Pick another --name.' })
      host.cgroup = cgroup
    }
    writeState(paths, state)
  }
  await Promise.all(state.hosts.map(async (host) => {
    await addVeth(vethName(state.name, host.index), host.netns!)
    host.veth = vethName(state.name, host.index)
    writeState(paths, state)
    await configureHostNetwork({ netns: host.netns!, veth: host.veth, bridge: state.bridge!, address: host.address, gateway: state.subnet.gateway })
    const init = state.systemd ? systemdHostInit(state, host, paths, release, machineHostKeys) : hostInit(state, host, paths, release, machineHostKeys)
    const booted = await bootHost(host.netns!, init, hostPaths(paths, host.index).initScript, hostPaths(paths, host.index).console, host.cgroup)
    host.launcher = booted.launcher
    host.init = booted.init
    writeState(paths, state)
  }))
  await Promise.all(state.hosts.map((h) => waitForSsh(h, hostPaths(paths, h.index).console)))

  writeFileSync(paths.knownHosts, knownHosts(state.hosts.map((h) => ({
    address: h.address,
    publicKey: readFileSync(`${hostPaths(paths, h.index).hostKey}.pub`, 'utf8'),
  }))), { mode: 0o644 })
  if (state.systemd) {
    writeKubesprayInventory(paths, state)
    await waitForUnits(state, paths)
  } else writeFileSync(paths.inventory, renderInventory({
    lab: state.name,
    etcdVersion: state.etcd.version,
    hosts: state.hosts.map((h) => ({ name: h.name, address: h.address, member: h.member })),
    privateKey: paths.privateKey,
    knownHosts: paths.knownHosts,
    etcdBinDir: state.etcd.binDir,
    dataDir: LAB_DATA_DIR,
  }), { mode: 0o644 })
  state.phase = 'up'
  writeState(paths, state)
  log(`${count} host(s) up in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}

/** What host `host` boots with: its identity files, and for 3.5 the fetched binaries in place of 3.4's. */
function hostInit(state: LabState, host: HostState, paths: LabPaths, release: EtcdRelease, machineHostKeys: string[]): HostInitSpec {
  const { file, identity, spec } = hostInitBase(state, host, paths)
  const sftp = findProgram('sftp-server') ?? (existsSync('/usr/lib/openssh/sftp-server') ? '/usr/lib/openssh/sftp-server' : undefined)
  const install = [
    ...identity,
    { from: file('sshd_config_lab', sshdConfig(host, sftp)), to: SSHD_CONFIG_PATH, mode: '0644' },
    { from: paths.publicKey, to: '/root/.ssh/authorized_keys', mode: '0600' },
    // Root's shell startup files as a fresh Debian has them, not this machine's
    // (whose pyenv/cargo hooks would cost every SSH command most of a second).
    ...['bashrc', 'profile']
      .filter((f) => existsSync(`/usr/share/base-files/dot.${f}`))
      .map((f) => ({ from: `/usr/share/base-files/dot.${f}`, to: `/root/.${f}`, mode: '0644' })),
  ]
  const remove = [...machineHostKeys]
  if (release.suite) {
    // Look like a 3.5 machine: only the fetched binaries, at /usr/local/bin.
    remove.push(...['etcd', 'etcdctl', 'etcdutl'].map((b) => `/usr/bin/${b}`))
    install.push(...etcdBinaries(release.version).map((b) => ({
      from: join(state.etcd.sourceDir, b), to: `${release.hostBinDir}/${b}`, mode: '0755',
    })))
  }
  return { ...spec, install, remove, mkdirs: [{ path: '/root/.ssh', mode: '0700' }] }
}

/** Namespaces or links named like this lab's exist, but no state here records them. */
async function refuseForeign(name: string, paths: LabPaths): Promise<void> {
  const foreign = await foreignObjects(name)
  if (foreign.length > 0) {
    throw new InputError(`the name "${name}" is taken by a lab this directory did not make (${foreign.join(', ')})`, {
      where: paths.dir,
      hint: 'Pick another --name, or the --dir of the lab that made them, and run down there.',
    })
  }
}

function reportExisting(state: LabState, paths: LabPaths, asked: { hosts?: number; etcd?: string; disk?: string; diskDir?: string; systemd?: LabState['systemd'] | 'any' }): Lab {
  const dead = state.hosts.filter((h) => !isRunning(h.init)).map((h) => h.name)
  if (state.phase !== 'up' || dead.length > 0) {
    throw new InputError(`lab "${state.name}" exists but is not fully up${dead.length ? ` (${dead.join(', ')} stopped)` : ''}`, {
      where: paths.dir,
      hint: 'Run `lab.mjs down` for it, then up again.',
    })
  }
  const differs = [
    asked.hosts !== undefined && asked.hosts !== state.hosts.length ? `${state.hosts.length} hosts` : '',
    asked.etcd !== undefined && asked.etcd !== state.etcd.version ? `etcd ${state.etcd.version}` : '',
    asked.disk !== undefined && asked.disk !== state.disk ? `--disk ${state.disk}` : '',
    asked.diskDir !== undefined && asked.diskDir !== state.diskDir ? (state.diskDir ? `disks in ${state.diskDir}` : 'tmpfs disks') : '',
    asked.systemd !== 'any' && JSON.stringify(asked.systemd ?? null) !== JSON.stringify(state.systemd ?? null)
      ? (state.systemd ? `--init systemd${state.systemd.tls ? ' --tls' : ''} --sudo ${state.systemd.sudo} --etcd-restart ${state.systemd.restart}` : '--init tini') : '',
  ].filter(Boolean)
  if (differs.length > 0) {
    throw new InputError(`lab "${state.name}" is already up with ${differs.join(', ')}`, {
      where: paths.dir,
      hint: 'Run `lab.mjs down` first to change it, or use another --name.',
    })
  }
  return { name: state.name, paths, state, alreadyUp: true }
}
