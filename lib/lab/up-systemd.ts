// The systemd flavor of `lab up` (--init systemd): what each host boots with,
// the kubespray-shaped inventory, and waiting until etcd.service has settled.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InputError, RescueError } from '../errors.ts'
import { sh } from '../shell/sh.ts'
import { etcdBinaries, type EtcdRelease } from './etcd-release.ts'
import { hostInitBase } from './host-init.ts'
import type { HostInitSpec } from './init-script.ts'
import { etcdEnv, etcdUnit } from './kubespray-etcd.ts'
import { renderKubesprayInventory } from './kubespray-inventory.ts'
import { LAB_DATA_DIR } from './names.ts'
import type { LabPaths } from './paths.ts'
import { sshExec } from './ssh.ts'
import type { HostState, LabState, SystemdLabState } from './state.ts'
import { LAB_ETCD_USER, LAB_LOGIN_USER, sshdDropIn, systemdHostSetup } from './systemd-host.ts'
import { hostCertFiles } from './tls.ts'
import type { LabUpOptions } from './up.ts'

/** The systemd settings `up` was asked for, or undefined for the tini lab; refuses systemd-only flags without it. */
export function systemdOptions(o: LabUpOptions): SystemdLabState | undefined {
  if ((o.init ?? 'tini') === 'tini') {
    const stray = [o.tls && '--tls', o.sudo && '--sudo', o.etcdRestart && '--etcd-restart'].filter(Boolean)
    if (stray.length > 0) throw new InputError(`${stray.join(', ')} only apply to --init systemd`)
    return undefined
  }
  if (o.init !== 'systemd') throw new InputError(`--init must be tini or systemd, got ${JSON.stringify(o.init)}`)
  if (o.sudo !== undefined && o.sudo !== 'nopasswd' && o.sudo !== 'password') throw new InputError(`--sudo must be nopasswd or password, got ${JSON.stringify(o.sudo)}`)
  if (o.etcdRestart !== undefined && o.etcdRestart !== 'on-failure' && o.etcdRestart !== 'always') {
    throw new InputError(`--etcd-restart must be on-failure or always, got ${JSON.stringify(o.etcdRestart)}`)
  }
  return { user: LAB_LOGIN_USER, sudo: o.sudo ?? 'nopasswd', tls: !!o.tls, restart: o.etcdRestart ?? 'on-failure' }
}

export function systemdHostInit(state: LabState, host: HostState, paths: LabPaths, release: EtcdRelease, machineHostKeys: string[]): HostInitSpec {
  const sd = state.systemd!
  const { file, identity, spec } = hostInitBase(state, host, paths)
  const members = state.hosts.map((h) => ({ name: h.name, member: h.member, address: h.address }))
  const self = members.find((m) => m.name === host.name)!
  const setup = systemdHostSetup({
    unitFile: file('etcd.service', etcdUnit({ restart: sd.restart, user: LAB_ETCD_USER })),
    envFile: file('etcd.env', etcdEnv({ self, all: members, dataDir: LAB_DATA_DIR, tls: sd.tls, token: `k8s_etcd_${state.name}` })),
    sshdDropIn: file('sshd-lab.conf', sshdDropIn()),
    publicKey: paths.publicKey,
    sudo: sd.sudo,
    password: readFileSync(paths.becomePassword, 'utf8').trim(),
    certs: sd.tls ? hostCertFiles(host.name).map((name) => ({ from: join(paths.pki, name), name })) : [],
    etcdBinaries: etcdBinaries(release.version).map((b) => ({ from: join(state.etcd.sourceDir, b), name: b })),
    dataDir: LAB_DATA_DIR,
  })
  return {
    ...spec,
    install: identity,
    remove: [...machineHostKeys],
    mkdirs: [],
    systemd: { setup, container: `etcd-rescue-lab` },
  }
}

export function writeKubesprayInventory(paths: LabPaths, state: LabState): void {
  const files = renderKubesprayInventory({
    lab: state.name,
    etcdVersion: state.etcd.version,
    hosts: state.hosts.map((h) => ({ name: h.name, address: h.address })),
    user: state.systemd!.user,
    privateKey: paths.privateKey,
    knownHosts: paths.knownHosts,
  })
  for (const [rel, text] of Object.entries(files)) {
    const to = join(paths.dir, rel)
    mkdirSync(join(to, '..'), { recursive: true })
    writeFileSync(to, text, { mode: 0o644 })
  }
}

/**
 * Wait until etcd.service has settled on every host. Type=notify: "activating"
 * until the member has joined a quorum, so all hosts are polled together.
 */
export async function waitForUnits(state: LabState, paths: LabPaths, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const lab = { state, paths }
  await Promise.all(state.hosts.map(async (h) => {
    for (;;) {
      const r = await sshExec(lab, h.index, sh`systemctl is-active etcd.service`, { timeoutMs: 15_000, asRoot: false })
      const status = r.stdout.trim()
      if (status === 'active') return
      if (status === 'failed' || Date.now() > deadline) {
        const journal = await sshExec(lab, h.index, sh`journalctl -u etcd.service -n 8 --no-pager`, { timeoutMs: 15_000 })
        throw new RescueError(`etcd.service is ${status || `unknown (${r.stderr.trim()})`}`, { where: h.name, hint: `Its journal ends with:\n    ${journal.stdout.trimEnd().split('\n').join('\n    ')}` })
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }))
}
