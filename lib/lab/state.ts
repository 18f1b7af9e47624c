// state.json: everything `up` made, written as it is made, so that `down` can
// remove exactly that (even after an `up` that died half way) and nothing else.
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InputError } from '../errors.ts'
import type { LabPaths } from './paths.ts'
import type { Subnet } from './subnet.ts'

export const STATE_TOOL = 'etcd-rescue lab'
export const STATE_VERSION = 1

/** A process identified so that a recycled PID is never mistaken for it. */
export interface ProcessRef {
  pid: number
  /** Field 22 of /proc/PID/stat (start time in clock ticks since boot). */
  startTime: number
}

export interface HostState {
  index: number
  /** Host name, inventory name. */
  name: string
  member: string
  address: string
  netns?: string
  /** Root-namespace end of the veth pair. */
  veth?: string
  dir: string
  /** `unshare`, the parent of the host's init, as seen from the root namespace. */
  launcher?: ProcessRef
  /** The host's PID 1 (init of its PID namespace) as seen from the root namespace. */
  init?: ProcessRef
  /** systemd hosts: the cgroup2 directory the host lives in (removed by down). */
  cgroup?: string
}

/** How a systemd lab looks (absent: the tini lab, root logs in, etcd run by cluster start). */
export interface SystemdLabState {
  /** Login user (sudo to root). */
  user: string
  sudo: 'nopasswd' | 'password'
  /** TLS on client and peer URLs, kubespray's certificates. */
  tls: boolean
  /** Restart= of etcd.service. */
  restart: 'on-failure' | 'always'
}

export interface LabState {
  tool: typeof STATE_TOOL
  version: typeof STATE_VERSION
  name: string
  /** 'creating' until every host answers SSH. */
  phase: 'creating' | 'up'
  createdAt: string
  subnet: Subnet
  bridge?: string
  disk: string
  /**
   * Set when the hosts' disks are directories on the machine's disk (`up --disk-dir`)
   * rather than tmpfs: this lab's own directory there (BASE/NAME, host I's disk in hI/),
   * made by `up` and removed by `down`.
   */
  diskDir?: string
  etcd: {
    version: string
    /** Where etcd, etcdctl (and etcdutl from 3.5) are on the hosts. */
    binDir: string
    /** Where the binaries come from on this machine. */
    sourceDir: string
  }
  hosts: HostState[]
  /** Set when the hosts boot systemd (`up --init systemd`). */
  systemd?: SystemdLabState
  /** Set when the hosts' /bin/sh is bash (LabUpOptions.binSh); else it is the machine's. */
  binSh?: 'bash'
}

export function readState(paths: LabPaths): LabState | undefined {
  let text: string
  try {
    text = readFileSync(paths.state, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  const state = JSON.parse(text) as LabState
  if (state.tool !== STATE_TOOL) {
    throw new InputError(`${paths.state} was not written by ${STATE_TOOL}`, { hint: 'Use another --name or --dir; this tool leaves that lab alone.' })
  }
  return state
}

/** Write-then-rename, so a crash never leaves a half-written state file. */
export function writeState(paths: LabPaths, state: LabState): void {
  const tmp = `${paths.state}.tmp`
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, paths.state)
}

/** Every lab with a state file under the base directory (other than broken ones). */
export function listLabStates(base: string): LabState[] {
  let names: string[]
  try {
    names = readdirSync(base)
  } catch {
    return []
  }
  const states: LabState[] = []
  for (const name of names) {
    try {
      const state = JSON.parse(readFileSync(join(base, name, 'state.json'), 'utf8')) as LabState
      if (state.tool === STATE_TOOL) states.push(state)
    } catch {
      // not a lab directory
    }
  }
  return states
}
