// Preflight verdicts from the facts each host reported. Pure: every rule here is
// a unit test away from proof. A host with any problem stops the run before
// anything changes anywhere.
import type { HostFacts } from './facts.ts'
import { unitDisagreement, unitMember, type UnitConfig } from './unit.ts'
import { isSupported, parseVersion, restoreTool, supportsBumpRevision, type EtcdVersion } from '../etcd/version.ts'
import { expiredInRole } from './tls-check.ts'
import { listenUrl } from '../etcd/process.ts'

export interface CheckInput {
  member: { name: string; service: 'systemd' | 'process'; serviceName: string; binDir?: string; peerUrl: string; clientUrl: string; dataDir: string; etcdUser?: string }
  facts: HostFacts
  snapshotSize: number
  snapshotSha: string
  bumpRevision?: number
}

/**
 * Room the recovery needs: the copied snapshot (in the work dir, beside the data dir), and the
 * restored db with etcd's preallocated 64 MiB WAL (beside the data dir too, or inside it when
 * it is a mount point: then on the data dir's own disk). `copy` is the snapshot's share of `parent`.
 */
export function spaceNeeded(snapshotSize: number, snapshotInPlace: boolean, mountpoint = false): { parent: number; data: number; copy: number } {
  const restored = snapshotSize + 64 * 2 ** 20
  const margin = (n: number) => Math.ceil(n * 1.1)
  const copy = snapshotInPlace ? 0 : margin(snapshotSize)
  return { parent: mountpoint ? copy : margin((snapshotInPlace ? 0 : snapshotSize) + restored), data: margin(restored), copy }
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(0)} MiB`
}

export function hostProblems(c: CheckInput): string[] {
  const f = c.facts
  const problems: string[] = []
  const where = c.member.binDir ? `in etcd_bin_dir ${c.member.binDir}` : 'on PATH or in /usr/local/bin'
  if (!f.bins.etcd) problems.push(`etcd binary not found ${where}`)
  else if (!f.version) problems.push(`cannot tell the version of ${f.bins.etcd}`)
  else if (!isSupported(f.version)) problems.push(`etcd ${f.version.text} is not supported (3.4 or newer)`)
  // The survivor guard reads a running member's revision with it before anything changes
  // (and 3.4 restores with it); the quorum wait and verification do not use it.
  if (!f.bins.etcdctl) problems.push(`etcdctl not found ${where} (needed to read a running member's revision before anything changes, and to restore 3.4)`)
  if (f.version && isSupported(f.version)) {
    if (restoreTool(f.version) === 'etcdutl' && !f.bins.etcdutl && f.version.minor >= 6) {
      problems.push(`etcdutl not found ${where}: etcd ${f.version.text} restores only with etcdutl`)
    }
    for (const [tool, v] of Object.entries(f.toolVersions)) {
      if (v !== f.version.text) problems.push(`${tool} is ${v} but etcd is ${f.version.text}: a mixed install`)
    }
    if (c.bumpRevision && !supportsBumpRevision(f.version)) {
      problems.push(`--bump-revision needs etcd 3.4.27, 3.5.10 or newer; this host has ${f.version.text}`)
    }
  }
  if (!f.has.sha256sum) problems.push('sha256sum not found (coreutils)')
  // This member's etcd (found by its data dir or ports) is stopped by the run; anything else stays,
  // and keeps etcd from listening where their addresses overlap (either a wildcard, or the same).
  // An etcd on these ports is this member's (process.ts finds it by them) even if it started
  // after the PIDs were read (a unit's Restart=): the stop handles it.
  const own = ownListens(c)
  for (const l of f.listeners ?? []) {
    if (f.pids.includes(l.pid) || l.comm === 'etcd') continue
    const overlaps = own.some((o) => o.port === l.port && sameAddress(o.host, l.address))
    if (!overlaps) continue
    problems.push(`port ${l.port} on ${l.address} is taken by ${l.comm} (pid ${l.pid}), not by this member's etcd: the restored etcd could not listen there; stop it, then run again`)
  }
  if (c.member.service === 'process' && !f.has.setsid) problems.push('setsid not found (util-linux)')
  if (c.member.service === 'process' && [c.member.peerUrl, c.member.clientUrl].some((u) => u.startsWith('https:'))) {
    problems.push('etcd_service=process with https URLs: etcd-rescue starts plain processes without TLS flags; run this member under systemd (its unit carries them)')
  }
  if (c.member.service === 'systemd') {
    if (!f.has.systemctl) problems.push('etcd_service is systemd but systemctl is not found (set etcd_service=process?)')
    else if (f.unit?.loadState !== 'loaded') problems.push(unitNotLoaded(c.member.serviceName, f.unit))
    else if (f.unitConfig) problems.push(...unitProblems(c.member, f.unitConfig, f.version))
  }
  if (f.etcdUser && !f.etcdUser.exists) {
    problems.push(`user ${f.etcdUser.name} (${c.member.etcdUser ? 'etcd_user' : `User= of ${c.member.serviceName}`}), who must own the restored data, does not exist on this host`)
  }
  for (const file of f.tls?.missing ?? []) problems.push(`TLS file ${file} does not exist (etcdctl needs it to reach the member over https; set etcd_cert_dir or etcd_ca_file/etcd_cert_file/etcd_key_file)`)
  for (const file of f.tls?.unreadable ?? []) problems.push(`TLS file ${file} is not readable with this run's privileges (set ansible_become?)`)
  for (const file of f.tls?.notFile ?? []) problems.push(`TLS file ${file} is not a regular file (a directory, a FIFO or a device): etcdctl could not use it; set etcd_cert_dir or etcd_ca_file/etcd_cert_file/etcd_key_file`)
  for (const { file, notAfter } of f.tls?.expired ?? []) problems.push(`TLS file ${file} expired on ${notAfter} (by this host's clock): etcd-rescue could not reach the member over https with it; renew it, then run again`)
  if (!f.parent.exists) problems.push('the data dir\'s parent directory does not exist')
  else if (!f.parent.writable) problems.push('the data dir\'s parent directory is not writable (connect as root or set ansible_become)')
  const inPlace = f.snapshot.sha256 === c.snapshotSha
  const need = spaceNeeded(c.snapshotSize, inPlace, f.dataDir.mountpoint)
  // Restore dirs an earlier run left: the restore step removes them before it restores, so their
  // room is the restore's (on the data dir's disk when they are inside a mount point); the copy
  // comes first and needs room of its own.
  const stale = f.staleRestores ?? []
  const onData = (p: string) => f.dataDir.mountpoint && p.startsWith(`${c.member.dataDir.replace(/\/+$/, '')}/`)
  const staleOn = (data: boolean) => stale.filter((x) => onData(x.path) === data)
  const staleBytes = (data: boolean) => staleOn(data).reduce((n, x) => n + x.bytes, 0)
  const stalePaths = (data: boolean) => staleOn(data).map((x) => x.path).join(', ')
  const leftovers = (data: boolean) => (staleOn(data).length ? `; ${mib(staleBytes(data))} of it held by restore dirs an earlier run left (${stalePaths(data)}), which this run's restore removes` : '')
  // A part file of this run's upload (running alongside the probe) holds space the snapshot is counted for.
  const free = f.parent.freeBytes === undefined ? undefined : f.parent.freeBytes + (inPlace ? 0 : f.parent.partsBytes ?? 0)
  if (free !== undefined && free + staleBytes(false) < need.parent) {
    problems.push(`not enough free space next to the data dir: ${mib(free + staleBytes(false))} free, ${mib(need.parent)} needed${leftovers(false)}`)
  } else if (free !== undefined && free < need.copy) {
    // Only where restore dirs an earlier run left made the check above pass.
    problems.push(`not enough free space next to the data dir for the snapshot's copy: ${mib(free)} free, ${mib(need.copy)} needed; the restore dirs an earlier run left (${stalePaths(false)}) are removed only after the copy: remove them, then run again`)
  }
  if (f.dataDir.mountpoint && f.dataDir.freeBytes !== undefined && f.dataDir.freeBytes + staleBytes(true) < need.data) {
    problems.push(`not enough free space on the data dir's disk: ${mib(f.dataDir.freeBytes + staleBytes(true))} free, ${mib(need.data)} needed${leftovers(true)}`)
  }
  return problems
}

/** Problems that only show across hosts: one etcd version everywhere. */
export function clusterProblems(versions: Array<{ name: string; version?: string }>): string[] {
  const seen = new Map<string, string[]>()
  for (const v of versions) if (v.version) seen.set(v.version, [...(seen.get(v.version) ?? []), v.name])
  if (seen.size <= 1) return []
  return [`members run different etcd versions: ${[...seen].map(([v, names]) => `${v} on ${names.join(', ')}`).join('; ')}. Restore with one version everywhere.`]
}

/**
 * Why a unit systemd has not loaded cannot be the member etcd-rescue starts
 * after the restore: refused in preflight, before anything changes, and not
 * at the start step with every member's data already swapped.
 */
export function unitNotLoaded(unit: string, state: HostFacts['unit']): string {
  if (!state) return `systemctl show ${unit} printed nothing: is systemd this host's init (set etcd_service=process?)`
  switch (state.loadState) {
    case 'not-found':
      return `systemd unit ${unit} not found (set etcd_service_name?)`
    case 'masked':
      // A mask made with --runtime (in /run) is lifted with --runtime.
      return `${unit} is masked, so it could not be started after the restore: unmask it (systemctl unmask${state.fileState === 'masked-runtime' ? ' --runtime' : ''} ${unit}), then run again; etcd-rescue stops it and holds it down itself while the data is replaced`
    default:
      return `systemd has not loaded ${unit} (LoadState=${state.loadState}), so it could not be started after the restore: systemctl status ${unit} says why; fix the unit, then run again`
  }
}

/**
 * What in a loaded unit would make the restored member fail to start, start
 * as another member, or start as a cluster of its own: each found here is
 * refused before anything changes.
 */
export function unitProblems(member: CheckInput['member'], u: UnitConfig, checked?: EtcdVersion): string[] {
  const unit = member.serviceName
  const problems: string[] = []
  const running = unitMember(u)
  const diff = unitDisagreement(member, running, unit)
  if (diff.length) problems.push(`the unit would start a different member than the inventory describes; make them agree (etcd_member_name, etcd_data_dir, etcd_peer_url or the unit's environment file), then run again:\n${diff.map((l) => `    ${l}`).join('\n')}`)
  if (u.exec.missing) problems.push(`${unit} runs ${u.exec.path || 'nothing (no ExecStart)'}, which is not there or not executable: systemd could not start it`)
  else if (u.exec.version !== undefined) {
    const v = parseVersion(u.exec.version)
    if (!v) problems.push(`${unit} runs ${u.exec.path}, which did not say its etcd version (${JSON.stringify(u.exec.version.slice(0, 80))})`)
    else if (checked && v.text !== checked.text) problems.push(`${unit} runs ${u.exec.path}, etcd ${v.text}, but the etcd checked here is ${checked.text}: the restore must be made for the etcd that will run on it; set etcd_bin_dir to ${u.exec.path.replace(/\/[^/]*$/, '') || '/'}, then run again`)
  }
  // The files etcd takes (flags over variables); the unit may name others it overrides.
  for (const { path, from, role } of running.tlsFiles) {
    if (u.tls.missing.includes(path)) problems.push(`${unit}'s etcd is told to use ${path} (${from}), which does not exist: it could not start`)
    if (u.tls.notFile.includes(path)) problems.push(`${unit}'s etcd is told to use ${path} (${from}), which is not a regular file (a directory, a FIFO or a device): it could not start`)
    const expired = u.tls.expired.find((e) => e.file === path && expiredInRole(e, role))
    if (expired) problems.push(`${unit}'s etcd is told to use ${path} (${from}), which expired on ${expired.notAfter} (by this host's clock): restored members could not talk to each other or serve clients; renew the certificates, then run again`)
  }
  if (running.listenClientUrls && !running.listenClientUrls.value.some((u) => servesUrl(u, member.clientUrl))) {
    problems.push(`${unit}'s etcd listens for clients on ${running.listenClientUrls.value.join(',')} (${running.listenClientUrls.from}), not on ${member.clientUrl}, where etcd-rescue would wait for it and prove it: set etcd_client_url to where it listens, then run again`)
  }
  if (running.forceNewCluster) {
    problems.push(`${unit} starts etcd with --force-new-cluster (${running.forceNewCluster}): on restored data each member would make a cluster of its own, a split under one cluster ID; remove it from the unit, then run again`)
  }
  const dataDir = (running.dataDir ?? member.dataDir).replace(/\/+/g, '/')
  if (running.walDir && running.walDir.value !== `${dataDir}/member/wal`) {
    problems.push(`${unit} keeps etcd's WAL apart from its data dir (--wal-dir ${running.walDir.value}, ${running.walDir.from}): etcd-rescue restores the WAL into the data dir, so etcd would start on the old WAL; not supported: remove the setting (etcd then uses ${dataDir}/member/wal), then run again`)
  }
  for (const file of u.envFilesMissing) problems.push(`${unit}'s EnvironmentFile ${file} does not exist or cannot be read: systemd would refuse to start it`)
  const refused = (['start', 'stop'] as const).filter((k) => u.refuseManual[k])
  if (refused.length) problems.push(`${unit} has ${refused.map((k) => `RefuseManual${k === 'start' ? 'Start' : 'Stop'}=yes`).join(' and ')}: etcd-rescue ${refused.join('s and ')}s it with systemctl; remove that from the unit, then run again`)
  if (u.needsReload) problems.push(`${unit} changed on disk since systemd last loaded it (NeedDaemonReload=yes; a unit file or drop-in written again unchanged counts too, by its time): what was read here is not what would start, and etcd-rescue reloads systemd before the start; run systemctl daemon-reload (it restarts nothing, but loads every unit changed on this host), then run again. On systemd 255 and later an enable, disable or mask without a reload (a snap refresh, say) marks every unit so; on 246 and 247 with several drop-ins a reload may not clear it (systemd issue 17730): touch the last drop-in, then reload`)
  // User=root reads anything; a numeric User= may be the same user: neither is refused.
  if (member.etcdUser && u.user && u.user !== 'root' && !/^\d+$/.test(u.user) && member.etcdUser !== u.user) {
    problems.push(`etcd_user is ${member.etcdUser} but ${unit} runs etcd as ${u.user} (User=): the restored data would belong to ${member.etcdUser}, mode 0700, and etcd could not read it; make them agree (or drop etcd_user: the unit's User= is used), then run again`)
  }
  return problems
}

const WILDCARDS = new Set(['*', '0.0.0.0', '::', '::ffff:0.0.0.0'])

/**
 * Where this member's etcd will listen, by port: a unit's listen URLs where it
 * sets them, else its advertised URLs; a plain process as etcd-rescue starts it
 * (process.ts: a name's host becomes 0.0.0.0; the client port on loopback too).
 */
function ownListens(c: CheckInput): Array<{ host: string; port: number }> {
  if (c.member.service === 'process') {
    // As process.ts starts it: a name (localhost too) on every address, the client port on loopback too.
    const out = [listenUrl(c.member.clientUrl), listenUrl(c.member.peerUrl)].map(urlParts).filter((p) => p !== undefined)
    return [...out, { scheme: '', host: '127.0.0.1', port: urlPort(c.member.clientUrl) }]
  }
  const um = c.facts.unitConfig && unitMember(c.facts.unitConfig)
  const urls = [
    ...(um?.listenClientUrls?.value ?? [c.member.clientUrl]),
    ...(um?.listenPeerUrls ?? [c.member.peerUrl]),
  ]
  return urls.map(urlParts).filter((p) => p !== undefined)
}

const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(':')

/**
 * Whether etcd listening on host `own` and a socket bound to `bound` could take
 * the same address: either a wildcard, the same address (IPv4-mapped or not),
 * `localhost` (the one name etcd binds: Go listens on its first IPv4 address,
 * 127.0.0.1) against that, or another name (unknown: taken to overlap).
 */
function sameAddress(own: string, bound: string): boolean {
  const [o, b] = [own, bound].map((a) => a.replace(/^::ffff:(?=[\d.]+$)/i, ''))
  if (WILDCARDS.has(o) || WILDCARDS.has(b) || o === b) return true
  if (o === 'localhost') return b === '127.0.0.1'
  return !isIp(o)
}

/**
 * A URL's scheme, host (brackets off an IPv6 address) and port (the scheme's
 * default when it names none); undefined if it does not parse (a unit's value).
 */
function urlParts(url: string): { scheme: string; host: string; port: number } | undefined {
  try {
    const u = new URL(url)
    return { scheme: u.protocol, host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) }
  } catch {
    return undefined
  }
}

/** A URL's port (the scheme's default when it names none); 0 if it does not parse. */
export const urlPort = (url: string): number => urlParts(url)?.port ?? 0

/**
 * Whether etcd listening on `listen` answers at `url`: the same scheme and port,
 * and the same host or a wildcard. Hosts that are names are taken to agree (no
 * lookup here); localhost listens on 127.0.0.1 only (as Go binds it): only a
 * certain mismatch is refused.
 */
function servesUrl(listen: string, url: string): boolean {
  const [l, u] = [urlParts(listen), urlParts(url)]
  if (!l || !u) return true
  if (l.scheme !== u.scheme || l.port !== u.port) return false
  if (l.host === 'localhost') return !isIp(u.host) || u.host === '127.0.0.1'
  return l.host === u.host || WILDCARDS.has(l.host) || !isIp(l.host) || !isIp(u.host)
}
