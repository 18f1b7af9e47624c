// `lab status`: what is up, read from state.json and checked against the
// machine (is the host's PID 1 alive, does sshd greet, does etcd answer /health).
import { sshBanner } from './host.ts'
import { etcdHealth, labTls } from './etcd-http.ts'
import { validateLabName } from './names.ts'
import { netnsList } from './net.ts'
import { labBaseDir, labPaths, type LabPaths } from './paths.ts'
import { isRunning } from './procs.ts'
import { listLabStates, readState, type LabState } from './state.ts'

export interface HostStatus {
  index: number
  name: string
  address: string
  member: string
  /** The host's PID 1 (root-namespace PID) is alive. */
  running: boolean
  initPid?: number
  netns: boolean
  ssh: boolean
  /** etcd's /health on the host's client URL: true, false (answers unhealthy) or undefined (no answer). */
  etcdHealthy?: boolean
}

export interface LabStatus {
  name: string
  dir: string
  phase: LabState['phase']
  subnet: string
  etcdVersion: string
  etcdBinDir: string
  paths: LabPaths
  hosts: HostStatus[]
}

export interface LabStatusOptions {
  /** One lab; default: every lab in the directory. */
  name?: string
  /** Directory holding labs' state; default $ETCD_RESCUE_LAB_DIR or <repo>/.lab. */
  dir?: string
}

export async function labStatus(options: LabStatusOptions = {}): Promise<LabStatus[]> {
  const base = labBaseDir(options.dir)
  const states = options.name
    ? [readState(labPaths(base, validateLabName(options.name)))].filter((s): s is LabState => !!s)
    : listLabStates(base).sort((a, b) => a.name.localeCompare(b.name))
  const namespaces = new Set(await netnsList())
  return Promise.all(states.map(async (state) => ({
    name: state.name,
    dir: labPaths(base, state.name).dir,
    phase: state.phase,
    subnet: state.subnet.cidr,
    etcdVersion: state.etcd.version,
    etcdBinDir: state.etcd.binDir,
    paths: labPaths(base, state.name),
    hosts: await Promise.all(state.hosts.map(async (h): Promise<HostStatus> => {
      const running = isRunning(h.init)
      return {
        index: h.index,
        name: h.name,
        address: h.address,
        member: h.member,
        running,
        initPid: h.init?.pid,
        netns: !!h.netns && namespaces.has(h.netns),
        ssh: running && (await sshBanner(h.address, 1000)),
        etcdHealthy: running ? await etcdHealth(h.address, 1000, state.systemd?.tls ? labTls(labPaths(base, state.name), h.name) : undefined) : undefined,
      }
    })),
  })))
}
