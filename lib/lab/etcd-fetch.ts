// Gets the etcd binaries of a release onto this machine without installing
// anything system-wide: Debian's etcd-server/etcd-client .debs of the suite that
// carries the release are fetched with apt-get under a private apt state (own
// sources list, lists and cache; /etc/apt untouched), unpacked with dpkg -x into
// <cache>/etcd/<version>/, checked with `etcd --version`, and kept for next time.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { InputError, RescueError } from '../errors.ts'
import { etcdBinaries, parseEtcdVersion, type EtcdRelease } from './etcd-release.ts'
import { run } from './exec.ts'
import { cacheDir } from './paths.ts'

const MIRROR = 'http://deb.debian.org/debian'
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'

/** Directory on this machine holding the release's etcd, etcdctl (and etcdutl). */
export async function ensureEtcdBinaries(release: EtcdRelease, log: (line: string) => void = () => {}): Promise<string> {
  if (!release.suite) {
    await checkVersion('/usr/bin', release.version, 'the machine\'s etcd-server package')
    return '/usr/bin'
  }
  const target = join(cacheDir(), 'etcd', release.version)
  const bin = join(target, 'usr', 'bin')
  if (etcdBinaries(release.version).every((b) => existsSync(join(bin, b)))) {
    await checkVersion(bin, release.version, target)
    return bin
  }
  log(`fetching etcd ${release.version} (Debian ${release.suite}) into ${target}`)
  const apt = await privateApt(release.suite)
  const debVersion = await debianVersion(apt, release)
  mkdirSync(join(cacheDir(), 'etcd'), { recursive: true })
  const work = mkdtempSync(join(cacheDir(), 'etcd', `.fetch-${release.version}-`))
  try {
    await run(['apt-get', ...apt, '-q', 'download', `etcd-server=${debVersion}`, `etcd-client=${debVersion}`], { cwd: work, timeoutMs: 600_000 })
    const root = join(work, 'root')
    for (const deb of readdirSync(work).filter((f) => f.endsWith('.deb'))) {
      await run(['dpkg-deb', '-x', join(work, deb), root])
    }
    await checkVersion(join(root, 'usr', 'bin'), release.version, `Debian ${release.suite}'s ${debVersion}`)
    rmSync(target, { recursive: true, force: true })
    renameSync(root, target) // atomic: a concurrent or interrupted fetch never leaves half a release
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return bin
}

/** apt-get options for a private apt state of one suite, after an update of its lists. */
async function privateApt(suite: string): Promise<string[]> {
  const dir = join(cacheDir(), 'apt', suite)
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) mkdirSync(join(dir, d), { recursive: true })
  const sources = join(dir, 'sources.list')
  writeFileSync(sources, `deb [signed-by=${KEYRING}] ${MIRROR} ${suite} main\n`)
  const options = [
    '-o', `Dir::Etc::SourceList=${sources}`,
    '-o', `Dir::Etc::SourceParts=${join(dir, 'sources.list.d')}`,
    '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o', `Dir::Cache=${join(dir, 'cache')}`,
    // Downloads land in our own directories, which apt's _apt user cannot write.
    '-o', 'APT::Sandbox::User=root',
  ]
  await run(['apt-get', ...options, '-q', 'update'], { timeoutMs: 600_000 }).catch((e: unknown) => {
    throw new RescueError(`cannot read Debian ${suite}'s package lists`, {
      hint: `etcd 3.5 comes from Debian's archive (${MIRROR}); check that this machine reaches it.`,
      cause: e,
    })
  })
  return options
}

/** The Debian version string (e.g. 3.5.30-2) of the wanted upstream release in the suite. */
async function debianVersion(apt: string[], release: EtcdRelease): Promise<string> {
  const { stdout } = await run(['apt-cache', ...apt, 'madison', 'etcd-server'])
  const offered = stdout.split('\n')
    .map((line) => line.split('|').map((f) => f.trim()))
    .filter((f) => f.length >= 3 && f[2].includes(`${release.suite}/`))
    .map((f) => f[1])
  const match = offered.find((v) => v.replace(/^\d+:/, '').split('-')[0].split('+')[0] === release.version)
  if (!match) {
    throw new InputError(`Debian ${release.suite} no longer carries etcd ${release.version}`, {
      hint: `It offers ${offered.join(', ') || 'no etcd-server'}; pick another --etcd version.`,
    })
  }
  return match
}

async function checkVersion(binDir: string, version: string, from: string): Promise<void> {
  const etcd = join(binDir, 'etcd')
  const { stdout } = await run([etcd, '--version'], { allowFailure: true }).catch(() => ({ stdout: '' }))
  const found = parseEtcdVersion(stdout)
  if (found !== version) {
    throw new InputError(`${etcd} is etcd ${found ?? '(not runnable)'}, not ${version} (from ${from})`, {
      hint: version === '3.4.23'
        ? 'Install Debian bookworm\'s etcd: apt-get install -y etcd-server etcd-client'
        : `Remove ${binDir.replace(/\/usr\/bin$/, '')} so the lab fetches it again.`,
    })
  }
}
