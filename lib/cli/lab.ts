// `scripts/lab.mjs`: arguments → lib/lab calls → text. Exit codes as in
// lib/errors.ts: 0 done, 1 failed, 2 bad input (nothing changed).
import { parseArgs } from 'node:util'
import { ExitCode, InputError, RescueError, formatError } from '../errors.ts'
import { clusterKill, clusterLoad, clusterStart, clusterStop, labDown, labStatus, labUp, openLab, type Lab, type LabStatus } from '../lab/index.ts'
import { ETCD_RELEASES, DEFAULT_ETCD_VERSION } from '../lab/etcd-release.ts'
import { DEFAULT_LAB_NAME, MAX_HOSTS } from '../lab/names.ts'
import { DEFAULT_DISK, DEFAULT_HOSTS } from '../lab/up.ts'
import { REPO_ROOT } from '../lab/paths.ts'
import { LOGINS, labLink, labLogin, parseRate, type Login } from '../lab/shape.ts'
import { relative } from 'node:path'

export const HELP = `Usage: npx zx scripts/lab.mjs COMMAND [options]

A lab turns this Linux machine into several hosts that look like separate machines
to anything that logs into them: each has its own network namespace and address on a
private bridge (198.18.K.0/24, nothing leaves the machine), its own PID namespace with
tini as PID 1, its own hostname, a copy-on-write root (overlayfs over the machine's /,
writes kept on a per-host tmpfs "disk") and a real OpenSSH sshd with its own host key.
Use it to rehearse a recovery before you need one. Needs root and Linux.

Commands:
  up                 create the lab (idempotent: a running lab is reported, not duplicated)
  down               remove exactly what up made, recorded in its state file (idempotent)
  status             what is up: hosts, PIDs, sshd and etcd health
  cluster start      start a fresh etcd cluster (--initial-cluster-state new) on all hosts
                     over SSH, members etcd1..etcdN, data dir /var/lib/etcd; wait until healthy
  cluster stop       stop each host's member (SIGTERM, SIGKILL after 10 s), by PID
  cluster kill       SIGKILL each host's member, as a crash would
  cluster load       write --keys N keys of varied sizes through the v3 JSON gateway
  shape              give the hosts a real fleet's conditions (for the benchmark):
                     --login fast|slow|busy, --link RATE|none

Options:
  --name NAME        lab name: 1-8 of a-z0-9, starting with a letter (default ${DEFAULT_LAB_NAME});
                     several labs with different names can run at once
  --dir DIR          where labs keep state and outputs (default $ETCD_RESCUE_LAB_DIR,
                     else <repo>/.lab); this lab's go to DIR/NAME/
  up:
  --hosts N          number of hosts, 1 to ${MAX_HOSTS} (default ${DEFAULT_HOSTS})
  --etcd VERSION     ${ETCD_RELEASES.map((r) => r.version).join(' | ')} (default ${DEFAULT_ETCD_VERSION}). 3.4.23 is the
                     machine's Debian package (/usr/bin); 3.5.16 (Debian trixie) and 3.5.30
                     (sid) are fetched once with apt-get download under a private apt state
                     into ~/.cache/etcd-rescue/etcd/VERSION (or $XDG_CACHE_HOME) and appear
                     on the hosts at /usr/local/bin, with 3.4's /usr/bin/etcd* hidden
  --disk SIZE        each host's disk, a tmpfs (RAM, only used pages count) (default ${DEFAULT_DISK})
  --disk-dir DIR     put the hosts' disks on this machine's disk instead of RAM, in
                     DIR/NAME/hI (made by up, must not exist; removed by down), for
                     data larger than RAM (e.g. /var/tmp/etcd-rescue-lab); --disk then
                     only sizes the hosts' /tmp
  --init INIT        tini (default): tini runs sshd, root logs in, etcd is started by
                     \`cluster start\`. systemd: each host boots systemd 252 as PID 1 (own
                     cgroup2 subtree) like a kubespray-built machine: Debian's ssh.service
                     and default sshd_config, root login off, user ops with sudo, etcd
                     from kubespray's etcd.service + /etc/etcd.env as user etcd, started
                     at boot; the inventory is kubespray-shaped (group_vars/, no etcd_*)
  --tls              systemd: kubespray's CA and certificates under /etc/ssl/etcd/ssl,
                     https and client-certificate auth on client and peer URLs
  --sudo MODE        systemd: nopasswd (default) or password (ops's password is in
                     DIR/NAME/become-password)
  --etcd-restart R   systemd: Restart= of etcd.service, on-failure (default) or always
  --bin-sh SHELL     what /bin/sh is on the hosts: dash (this machine's, default) or
                     bash, as on RHEL, Fedora and Amazon Linux; every remote step
                     etcd-rescue sends runs under it
  cluster start:
  --token TOKEN      --initial-cluster-token (default etcd-rescue-lab-NAME)
  --wipe             delete an existing /var/lib/etcd/member first (default: refuse)
  cluster stop|kill:
  --host I           only host I (1-based); repeat for several (default: all)
  cluster load:
  --keys N           how many keys (required)
  --seed TEXT        content seed: same seed, same data (default etcd-rescue)
  --prefix P         key prefix (default /etcd-rescue/load/)
  --concurrency C    puts in flight (default 16)
  --manifest FILE    where to write key -> sha256(value) as JSON
                     (default DIR/NAME/load-manifest.json)
  shape:
  --login KIND       what each command's login shell costs on every host: slow puts
                     a 0.5 s sleep at the top of root's ~/.bashrc, busy real CPU work
                     (like version-manager init hooks), fast removes ours
  --link RATE        limit the operator's link to the hosts (this machine to the
                     lab bridge) to RATE (e.g. 100mbit) both ways with tbf, or none;
                     host-to-host traffic stays unshaped, as on a real fleet reached
                     over a VPN. (No added latency: this kernel has no netem.)
  --json             status: print JSON
  -h, --help         this text

Outputs of up, in DIR/NAME/ (default <repo>/.lab/lab/):
  id_ed25519         the operator's private key (root on every host)
  known_hosts        each host's key for its address: use with StrictHostKeyChecking=yes
  inventory.ini      Ansible inventory, group [etcd], to point recover at
  state.json         what up made (processes, namespaces, links), read by down and status

Examples:
  npx zx scripts/lab.mjs up --hosts 3 --etcd 3.5.30
  ssh -i .lab/lab/id_ed25519 -o UserKnownHostsFile=.lab/lab/known_hosts root@198.18.1.11
  npx zx scripts/lab.mjs cluster start && npx zx scripts/lab.mjs cluster load --keys 1000
  npx zx scripts/lab.mjs down

Exit codes: 0 done; 1 failed (the message says what was left); 2 bad input or missing
prerequisite (nothing was changed).
`

const OPTIONS = {
  name: { type: 'string' },
  dir: { type: 'string' },
  hosts: { type: 'string' },
  etcd: { type: 'string' },
  disk: { type: 'string' },
  'disk-dir': { type: 'string' },
  init: { type: 'string' },
  tls: { type: 'boolean' },
  sudo: { type: 'string' },
  'etcd-restart': { type: 'string' },
  'bin-sh': { type: 'string' },
  token: { type: 'string' },
  wipe: { type: 'boolean' },
  host: { type: 'string', multiple: true },
  keys: { type: 'string' },
  seed: { type: 'string' },
  prefix: { type: 'string' },
  concurrency: { type: 'string' },
  manifest: { type: 'string' },
  login: { type: 'string' },
  link: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^-?\d+$/.test(value)) throw new InputError(`--${flag} must be a whole number, got ${JSON.stringify(value)}`)
  return Number(value)
}

/** Run one lab command; returns the exit code. `out` receives stdout text, `err` stderr text. */
export async function main(args: string[], out = (s: string) => process.stdout.write(s), err = (s: string) => process.stderr.write(s)): Promise<number> {
  try {
    let parsed
    try {
      parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true })
    } catch (e) {
      throw new InputError((e as Error).message, { hint: 'See --help.' })
    }
    const { values: v, positionals } = parsed
    if (v.help || positionals.length === 0) {
      out(HELP)
      return positionals.length === 0 && !v.help ? ExitCode.BAD_INPUT : ExitCode.OK
    }
    const command = positionals.join(' ')
    const where = { name: v.name, dir: v.dir }
    const log = (line: string) => err(`${line}\n`)
    switch (command) {
      case 'up': {
        const t0 = Date.now()
        const lab = await labUp({
          ...where, hosts: integer('hosts', v.hosts), etcd: v.etcd, disk: v.disk, diskDir: v['disk-dir'], log,
          init: v.init as 'tini' | 'systemd' | undefined, tls: v.tls, sudo: v.sudo as 'nopasswd' | 'password' | undefined,
          etcdRestart: v['etcd-restart'] as 'on-failure' | 'always' | undefined,
          binSh: v['bin-sh'] as 'dash' | 'bash' | undefined,
        })
        out(renderUp(lab, Date.now() - t0))
        return ExitCode.OK
      }
      case 'down': {
        const t0 = Date.now()
        const r = await labDown(where)
        out(r.found ? `lab "${r.name}" is down (${((Date.now() - t0) / 1000).toFixed(1)} s)\n` : `no lab "${r.name}" here: nothing to do\n`)
        if (r.foreign.length > 0) out(`left alone, not made by a lab here: ${r.foreign.join(', ')}\n`)
        return ExitCode.OK
      }
      case 'status': {
        const labs = await labStatus(where)
        out(v.json ? `${JSON.stringify(labs, null, 2)}\n` : renderStatus(labs))
        return ExitCode.OK
      }
      case 'cluster start': {
        const r = await clusterStart(where, { token: v.token, wipe: v.wipe, log })
        out(`etcd cluster healthy on ${r.members.length} member(s) in ${(r.elapsedMs / 1000).toFixed(1)} s\n`)
        for (const m of r.members) out(`  ${m.name}  ${m.host}  ${m.clientUrl}\n`)
        out(`  endpoints: ${r.endpoints}\n`)
        return ExitCode.OK
      }
      case 'cluster stop':
      case 'cluster kill': {
        const hosts = v.host?.map((h) => integer('host', h)!)
        const stopped = command === 'cluster stop' ? await clusterStop(where, { hosts }) : await clusterKill(where, { hosts })
        for (const s of stopped) out(`${s.host}: ${s.pids.length ? `stopped etcd (PID ${s.pids.join(', ')})` : 'no etcd running'}\n`)
        return ExitCode.OK
      }
      case 'cluster load': {
        const keys = integer('keys', v.keys)
        if (keys === undefined) throw new InputError('cluster load needs --keys N')
        const lab = openLab(where)
        const r = await clusterLoad(lab, {
          keys,
          seed: v.seed,
          prefix: v.prefix,
          concurrency: integer('concurrency', v.concurrency),
          manifestFile: v.manifest ?? lab.paths.loadManifest,
        })
        out(`wrote ${r.keys} keys, ${(r.bytes / 1048576).toFixed(1)} MiB, in ${(r.elapsedMs / 1000).toFixed(1)} s; revision ${r.revision}\n`)
        out(`  manifest: ${r.manifestFile}\n`)
        return ExitCode.OK
      }
      case 'shape': {
        if (!v.login && !v.link) throw new InputError('shape needs --login fast|slow|busy and/or --link RATE|none')
        if (v.login !== undefined && !(LOGINS as readonly string[]).includes(v.login)) throw new InputError(`--login is fast, slow or busy, not ${JSON.stringify(v.login)}`)
        if (v.link !== undefined) parseRate(v.link)
        if (v.login) await labLogin(where, v.login as Login)
        if (v.link) await labLink(where, v.link)
        out(`shaped: ${[v.login && `login ${v.login}`, v.link && `link ${v.link}`].filter(Boolean).join(', ')}\n`)
        return ExitCode.OK
      }
      default:
        throw new InputError(`unknown command ${JSON.stringify(command)}`, { hint: 'Commands: up, down, status, cluster start|stop|kill|load, shape. See --help.' })
    }
  } catch (e) {
    err(`${formatError(e)}\n`)
    return e instanceof RescueError ? e.exitCode : ExitCode.FAILED
  }
}

function renderUp(lab: Lab, ms: number): string {
  const s = lab.state
  const rel = (p: string) => (p.startsWith(REPO_ROOT) ? relative(process.cwd(), p) || p : p)
  const lines = [
    lab.alreadyUp
      ? `lab "${s.name}" is already up: ${s.hosts.length} host(s), etcd ${s.etcd.version}, ${s.subnet.cidr}`
      : `lab "${s.name}" is up: ${s.hosts.length} host(s), etcd ${s.etcd.version}${flavor(s)}, ${s.subnet.cidr} (${(ms / 1000).toFixed(1)} s)`,
    ...s.hosts.map((h) => `  ${h.name}  ${h.address}  ${h.member}`),
    `  private key:  ${lab.paths.privateKey}`,
    ...(s.systemd?.tls ? [`  certificates: ${lab.paths.pki} (kubespray's names; on the hosts in /etc/ssl/etcd/ssl)`] : []),
    `  known_hosts:  ${lab.paths.knownHosts}`,
    `  inventory:    ${lab.paths.inventory}`,
    `  try: ssh -i ${rel(lab.paths.privateKey)} -o UserKnownHostsFile=${rel(lab.paths.knownHosts)} ${s.systemd?.user ?? 'root'}@${s.hosts[0].address}`,
    '',
  ]
  return lines.join('\n')
}

function flavor(s: Lab['state']): string {
  const sd = s.systemd
  return sd ? ` under systemd (${[sd.tls ? 'TLS' : 'http', `sudo ${sd.sudo}${sd.sudo === 'password' ? ': see become-password' : ''}`, `Restart=${sd.restart}`].join(', ')})` : ''
}

function renderStatus(labs: LabStatus[]): string {
  if (labs.length === 0) return 'no lab is up here\n'
  return labs.map((lab) => [
    `lab "${lab.name}" (${lab.phase}): etcd ${lab.etcdVersion} in ${lab.etcdBinDir}, ${lab.subnet}, ${lab.dir}`,
    ...lab.hosts.map((h) => {
      const etcd = h.etcdHealthy === undefined ? 'etcd -' : h.etcdHealthy ? `${h.member} healthy` : `${h.member} UNHEALTHY`
      const state = h.running ? `up (PID 1 = ${h.initPid})` : 'DOWN'
      return `  ${h.name}  ${h.address}  ${state}  ssh ${h.ssh ? 'ok' : 'NO'}  ${etcd}`
    }),
    '',
  ].join('\n')).join('')
}
