// Where a lab keeps its state and outputs: <base>/<name>/, base being --dir,
// else $ETCD_RESCUE_LAB_DIR, else <repo>/.lab (gitignored). The repo is found
// from this file's own location, so the lab works from any working directory.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InputError } from '../errors.ts'

/**
 * The checkout this code runs from, with a trailing slash: the nearest directory
 * above this module holding etcd-rescue's package.json (this module may run from
 * lib/lab/, or from a bundle of lib built into lib/.bundle/; see scripts/_ts.mjs);
 * without one, two levels above this file.
 */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))

function findRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    try {
      if (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).name === 'etcd-rescue') return d.endsWith('/') ? d : `${d}/`
    } catch {
      // no package.json here, or not ours: one level up
    }
    if (dirname(d) === d) return fileURLToPath(new URL('../../', import.meta.url))
  }
}

/**
 * The paths end up unquoted inside ansible_ssh_common_args and sshd/ssh options,
 * so they are kept to characters that need no quoting anywhere.
 */
const PLAIN_PATH = /^[A-Za-z0-9_@%+=:,./-]+$/

export function labBaseDir(dir?: string): string {
  const base = resolve(dir ?? process.env.ETCD_RESCUE_LAB_DIR ?? join(REPO_ROOT, '.lab'))
  if (!PLAIN_PATH.test(base)) {
    throw new InputError(`lab directory ${JSON.stringify(base)} contains spaces or shell-special characters`, {
      hint: 'Choose a --dir made of letters, digits and / . _ - only: its paths go unquoted into ssh options.',
    })
  }
  return base
}

/** Every file and directory of one lab. */
export interface LabPaths {
  dir: string
  state: string
  privateKey: string
  publicKey: string
  knownHosts: string
  inventory: string
  /** Default place of `cluster load`'s digest manifest. */
  loadManifest: string
  hostsDir: string
  /** systemd labs: ops's password (sudo asks for it in the password variant). */
  becomePassword: string
  /** systemd --tls labs: the CA and every host's certificates, as on the hosts. */
  pki: string
  /** systemd labs: group_vars next to the inventory. */
  groupVars: string
}

export function labPaths(base: string, name: string): LabPaths {
  const dir = join(base, name)
  return {
    dir,
    state: join(dir, 'state.json'),
    privateKey: join(dir, 'id_ed25519'),
    publicKey: join(dir, 'id_ed25519.pub'),
    knownHosts: join(dir, 'known_hosts'),
    inventory: join(dir, 'inventory.ini'),
    loadManifest: join(dir, 'load-manifest.json'),
    hostsDir: join(dir, 'hosts'),
    becomePassword: join(dir, 'become-password'),
    pki: join(dir, 'pki'),
    groupVars: join(dir, 'group_vars'),
  }
}

/** Per-host working directory: the mount points of its disk and root, its host key, its console log. */
export interface HostPaths {
  dir: string
  /** Mount point (inside the host's private mount namespace only) of the tmpfs disk. */
  disk: string
  /** Mount point of the overlay root the host pivots into. */
  root: string
  hostKey: string
  /** sshd and init output (stderr of the host's PID 1). */
  console: string
  /** The script the host boots with (init-script.ts), kept for reading. */
  initScript: string
  /** Files copied into the host's root at boot. */
  files: string
}

export function hostPaths(lab: LabPaths, i: number): HostPaths {
  const dir = join(lab.hostsDir, `h${i}`)
  return {
    dir,
    disk: join(dir, 'disk'),
    root: join(dir, 'root'),
    hostKey: join(dir, 'ssh_host_ed25519_key'),
    console: join(dir, 'console.log'),
    initScript: join(dir, 'init.sh'),
    files: join(dir, 'files'),
  }
}

/**
 * Where host I's disk lives when the lab's disks are on the machine's disk
 * (`up --disk-dir`): LABDISKDIR/hI. Undefined for tmpfs disks.
 */
export function hostDiskBacking(labDiskDir: string | undefined, i: number): string | undefined {
  return labDiskDir === undefined ? undefined : join(labDiskDir, `h${i}`)
}

/** `up --disk-dir BASE`: the lab's own directory there, BASE/NAME, after checking BASE is usable. */
export function labDiskDir(base: string, name: string): string {
  if (!base.startsWith('/') || !PLAIN_PATH.test(base)) {
    throw new InputError(`--disk-dir ${JSON.stringify(base)} must be an absolute path of letters, digits and / . _ - only`)
  }
  return join(resolve(base), name)
}

/** Cache of fetched etcd releases: $XDG_CACHE_HOME or ~/.cache, then etcd-rescue/. */
export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'etcd-rescue')
}
