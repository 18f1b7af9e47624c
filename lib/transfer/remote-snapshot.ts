// --snapshot HOST:PATH: a snapshot that already lies on a member (where operators
// usually take them) is checked there and relayed from there; it never passes
// through the operator's machine. The checks are those lib/etcd/snapshot.ts makes
// on a local file, done on the host with standard tools (stat, head, tail, od,
// OpenSSL or sha256sum): bbolt magic and page size, the SHA-256 trailer `snapshot
// save` appends, the hash of the whole file (which every copy is verified
// against). The revision is read in the same command by the walk of its pages
// on the host (lib/etcd/bolt-walk.ts), checked here as a local file's would be.
import { existsSync } from 'node:fs'
import { ExitCode, InputError, RescueError } from '../errors.ts'
import { readBoltFacts, type BoltFacts } from '../etcd/bolt.ts'
import { boltWalkScript, factsFromWalk } from '../etcd/bolt-walk.ts'
import { inspectSnapshot, type SnapshotInfo } from '../etcd/snapshot.ts'
import type { Member } from '../inventory/members.ts'
import { HASH_FILE } from '../plan/scripts.ts'
import { sh, type Script } from '../shell/sh.ts'
import { SshHost, type ConnectOptions } from '../ssh/connection.ts'

export type SnapshotSource = { path: string; host?: undefined } | { path: string; host: string }

/**
 * Where --snapshot points. An existing local file, or a value starting with `/`, `./`
 * or `../`, is local (so `./a:b` is a local file); `NAME:PATH` with NAME a member
 * (its member name or its inventory name) is on that member's host; any other
 * `NAME:PATH` names an unknown host (exit 2).
 */
export function snapshotSource(value: string, members: Pick<Member, 'name' | 'inventoryHost'>[], localExists: (p: string) => boolean = existsSync): SnapshotSource {
  if (localExists(value) || /^(\/|\.\.?\/)/.test(value)) return { path: value }
  const m = /^([^/:]+):(.+)$/.exec(value)
  if (!m) return { path: value }
  const [, host, path] = m
  const member = members.find((x) => x.name === host || x.inventoryHost === host)
  if (!member) {
    throw new InputError(`--snapshot ${value}: "${host}" is not a member of the inventory, and no local file has that name`, {
      hint: `Members: ${members.map((x) => x.inventoryHost === x.name ? x.name : `${x.name} (${x.inventoryHost})`).join(', ')}. A local file whose name holds a colon: ./${value}`,
    })
  }
  if (!path.startsWith('/')) throw new InputError(`--snapshot ${value}: the path on ${host} must be absolute`)
  return { host: member.name, path }
}

/** What the host reports about the file; parsed strictly (nothing a host says is trusted as text). */
export function parseRemoteFacts(stdout: string): { size: number; head: Buffer; bodySha?: string; trailer?: string; sha256: string } {
  const kv = new Map(stdout.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  const size = Number(kv.get('size'))
  const head = kv.get('head') ?? ''
  const hex64 = /^[0-9a-f]{64}$/
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`unreadable size "${kv.get('size')}"`)
  if (!/^([0-9a-f]{2}){0,32}$/.test(head)) throw new Error('unreadable header bytes')
  const sha256 = kv.get('sha256') ?? ''
  if (!hex64.test(sha256)) throw new Error('unreadable sha256')
  const bodySha = kv.get('body')
  const trailer = kv.get('trailer')
  if (bodySha !== undefined && !hex64.test(bodySha)) throw new Error('unreadable body hash')
  if (trailer !== undefined && !hex64.test(trailer)) throw new Error('unreadable trailer')
  return { size, head: Buffer.from(head, 'hex'), bodySha, trailer, sha256 }
}

const BOLT_MAGIC = 0xed0cdaed

/** The local checks of inspectSnapshot, on what a host reported about its file. */
export function judgeRemoteSnapshot(where: string, f: ReturnType<typeof parseRemoteFacts>, skipHashCheck?: boolean): Omit<SnapshotInfo, 'path' | 'host'> {
  if (f.size < 4096 || f.head.length < 32 || f.head.readUInt32LE(16) !== BOLT_MAGIC) {
    throw new InputError('this is not an etcd snapshot (no bbolt database header)', { where })
  }
  const hasTrailer = f.size % 512 === 32
  if (hasTrailer && f.bodySha !== f.trailer) {
    throw new InputError(`snapshot integrity check failed: the file's trailer says sha256 ${f.trailer}, its content hashes to ${f.bodySha}`, {
      where, hint: 'The file is corrupt or truncated. Take the snapshot again; do not restore this one.',
    })
  }
  if (!hasTrailer && !skipHashCheck) {
    throw new InputError('snapshot has no integrity trailer (a raw copy of member/snap/db?)', { where, hint: 'etcd cannot verify such a file. If you trust it, pass --skip-hash-check.' })
  }
  return { size: f.size, sha256: f.sha256, hasTrailer, pageSize: f.head.readUInt32LE(24) }
}

/**
 * What checkSnapshot asks the host holding the file, in one remote command: its
 * size, header, trailer and hashes (parseRemoteFacts), and the walk of its pages
 * to its revision (`bolt.*` lines, factsFromWalk).
 */
export function remoteFactsScript(path: string): Script {
  return sh`${HASH_FILE}
f=${path}
[ -f "$f" ] && [ -r "$f" ] || { echo "no readable file $f on this host" >&2; exit 66; }
size=$(stat -c %s "$f")
echo "size=$size"
echo "head=$(head -c 32 "$f" | od -An -v -tx1 | tr -d ' \\n')"
if [ $((size % 512)) -eq 32 ] && [ "$size" -gt 32 ]; then
  if command -v openssl >/dev/null 2>&1; then body=$(head -c $((size - 32)) "$f" | openssl dgst -sha256 -r | cut -c1-64); else body=$(head -c $((size - 32)) "$f" | sha256sum | cut -c1-64); fi
  echo "body=$body"
  echo "trailer=$(tail -c 32 "$f" | od -An -v -tx1 | tr -d ' \\n')"
fi
echo "sha256=$(hash_file "$f")"
BOLT_F="$f"
${boltWalkScript('bolt.')}`
}

/** Checks a snapshot wherever it is; for HOST:PATH over a connection of its own (closed after). */
export async function checkSnapshot(value: string, members: Member[], o: { skipHashCheck?: boolean; connect: ConnectOptions }): Promise<{ snapshot: SnapshotInfo; point: BoltFacts }> {
  const src = snapshotSource(value, members)
  if (!src.host) {
    const snapshot = await inspectSnapshot(src.path, { skipHashCheck: o.skipHashCheck })
    return { snapshot, point: await boltFacts(snapshot.path, () => readBoltFacts(snapshot.path)) }
  }
  const member = members.find((m) => m.name === src.host)!
  const where = `${src.host}:${src.path}`
  const host = await SshHost.connect(member.name, member.ssh, o.connect)
  try {
    const r = await host.exec(remoteFactsScript(src.path), { allowFailure: true })
    if (r.code !== 0) throw new InputError(`cannot read the snapshot: ${r.stderr.trim() || `exit ${r.code}`}`, { where })
    let facts
    try {
      facts = parseRemoteFacts(r.stdout)
    } catch (err) {
      throw new RescueError(`what the host reported about the snapshot does not parse: ${(err as Error).message}`, { where, exitCode: ExitCode.PREFLIGHT })
    }
    const info = judgeRemoteSnapshot(where, facts, o.skipHashCheck)
    const point = await boltFacts(where, async () => factsFromWalk(r.stdout, 'bolt.'))
    return { snapshot: { ...info, path: src.path, host: src.host }, point }
  } finally {
    host.close()
  }
}

async function boltFacts(where: string, read: () => Promise<BoltFacts>): Promise<BoltFacts> {
  return read().catch((err) => {
    throw new RescueError(`cannot read the snapshot's revision: ${(err as Error).message}`, { where, exitCode: ExitCode.BAD_INPUT })
  })
}
