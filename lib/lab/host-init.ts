// What every lab host boots with, whichever init it runs (tini or systemd): its
// directories, its disk, and the files that make it a machine of its own
// (hostname, /etc/hosts, machine-id, SSH host key). up.ts and up-systemd.ts add
// what differs (sshd config and root's login, or systemd units and users).
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { etcHosts } from './host-files.ts'
import type { HostInitSpec } from './init-script.ts'
import { hostDiskBacking, hostPaths, type HostPaths, type LabPaths } from './paths.ts'
import type { HostState, LabState } from './state.ts'

export interface HostInitBase {
  hp: HostPaths
  /** Writes a file for this host's init into its files dir; returns its path. */
  file: (name: string, text: string) => string
  /** Hostname, /etc/hosts, machine-id and the host key, as install entries. */
  identity: HostInitSpec['install']
  /** The spec's fields every host has. */
  spec: Pick<HostInitSpec, 'hostname' | 'diskDir' | 'rootDir' | 'diskSize' | 'diskBacking' | 'binSh'>
}

export function hostInitBase(state: LabState, host: HostState, paths: LabPaths): HostInitBase {
  const hp = hostPaths(paths, host.index)
  for (const d of [hp.files, hp.disk, hp.root]) mkdirSync(d, { recursive: true })
  const diskBacking = hostDiskBacking(state.diskDir, host.index)
  if (diskBacking) mkdirSync(diskBacking)
  const file = (name: string, text: string) => {
    writeFileSync(join(hp.files, name), text)
    return join(hp.files, name)
  }
  return {
    hp,
    file,
    identity: [
      { from: file('hostname', `${host.name}\n`), to: '/etc/hostname', mode: '0644' },
      { from: file('hosts', etcHosts(host, state.hosts)), to: '/etc/hosts', mode: '0644' },
      { from: file('machine-id', `${randomBytes(16).toString('hex')}\n`), to: '/etc/machine-id', mode: '0444' },
      { from: hp.hostKey, to: '/etc/ssh/ssh_host_ed25519_key', mode: '0600' },
      { from: `${hp.hostKey}.pub`, to: '/etc/ssh/ssh_host_ed25519_key.pub', mode: '0644' },
    ],
    spec: { hostname: host.name, diskDir: hp.disk, rootDir: hp.root, diskSize: state.disk, diskBacking, ...(state.binSh ? { binSh: state.binSh } : {}) },
  }
}
