// What each member's data dir holds, read without changing it (issue 11): a
// running member answers `endpoint status` against itself alone (it does
// without quorum, with the error "etcdserver: no leader"); a stopped member's
// revision is read from member/snap/db in place by a walk of a few of its pages
// (etcd/bolt-walk.ts: no copy, never opened by etcd's tools, since bbolt may
// write on open), and its cluster ID comes from the first WAL record. The script is appended to
// the preflight probe, so it costs no extra remote command; it prints `held.*`
// lines that parseHeld() holds to a grammar before anything uses them.
import { prefixedFields } from '../shell/output.ts'
import { sh, type Script } from '../shell/sh.ts'
import { tlsArgs, parseJsonExact, type TlsFiles } from '../etcd/etcdctl.ts'
import { findPidsScript } from '../etcd/process.ts'
import { FIND_BIN } from './facts.ts'
import { isSafeAbsolutePath } from './grammar.ts'
import { BoltWalkUnavailable, boltWalkScript, factsFromWalk } from '../etcd/bolt-walk.ts'
import { tryReadFields } from '../etcd/protobuf.ts'

export interface HeldReadInput {
  dataDir: string
  binDir?: string
  clientUrl: string
  tls?: TlsFiles
  ports: number[]
}

/** What one member's data dir holds. `revision` undefined with hasData: it could not be read (see error). */
export interface MemberData {
  member: string
  hasData: boolean
  state: 'none' | 'running' | 'stopped'
  revision?: number
  /**
   * Running: the raft index its status reports. Stopped: the db's consistent_index, the last
   * index applied to it (its WAL may hold more, which etcd would replay on start).
   */
  raftIndex?: number
  /** Hex; from status (running) or the WAL's first record (stopped). */
  clusterId?: string
  memberId?: string
  /** A running member that reported "no leader": it lost quorum. */
  noLeader?: boolean
  error?: string
  /**
   * The read was done and the data itself is bad (no member/snap/db, or the walk
   * of its pages found no sound etcd database): a casualty, not a survivor. Other
   * errors (no answer, the file unreadable, no awk) leave what it holds unknown.
   */
  damaged?: boolean
  tools: { etcdctl?: string; etcdutl?: string }
}

export function heldReadScript(p: HeldReadInput): Script {
  const status = ['--endpoints=' + p.clientUrl, '--dial-timeout=2s', '--command-timeout=3s', ...tlsArgs(p.tls), 'endpoint', 'status', '-w', 'json']
  return sh`
SV_D=${p.dataDir}; BINDIR=${p.binDir ?? ''}
${FIND_BIN}
SV_C=$(find_bin etcdctl); SV_U=$(find_bin etcdutl)
echo "held.etcdctl=$SV_C"; echo "held.etcdutl=$SV_U"
if [ -d "$SV_D/member" ]; then
  echo "held.member=1"
  sv_pids=$( { ${findPidsScript(p.dataDir, p.ports)}
} | tr '\\n' ' ')
  if [ -n "$(echo $sv_pids)" ]; then
    echo "held.state=running"
    if [ -n "$SV_C" ]; then
      echo "held.status=$(env ETCDCTL_API=3 "$SV_C" ${status} 2>&1 | tail -n 5 | tr '\\n' ' ')"
    fi
  else
    echo "held.state=stopped"
    BOLT_F="$SV_D/member/snap/db"
    if [ ! -f "$BOLT_F" ]; then
      echo "held.db_error=no member/snap/db"
    else
      # Read in place by the walk of a few pages (etcd/bolt-walk.ts): never copied (a 1 GB
      # db would compete with the upload for the disk, and need room a full disk lacks),
      # never opened by etcd's tools (bbolt may write on open).
      ${boltWalkScript('held.bolt.')}
    fi
    sv_wal=$(ls "$SV_D/member/wal" 2>/dev/null | grep '\\.wal$' | head -n 1)
    [ -n "$sv_wal" ] && echo "held.wal=$(od -An -tx1 -v -N 512 "$SV_D/member/wal/$sv_wal" | tr -d ' \\n')"
  fi
fi
echo "held.done=1"
`
}

/** Thrown by parseHeld when the read did not run to its end: refuse rather than guess. */
export class HeldReadMissing extends Error {}

/**
 * Reads the `held.*` lines of a probe's output. Every number must be a whole
 * number, paths plain and absolute, IDs hex; what does not parse is kept as the
 * member's `error` (it could not be read), never used.
 */
export function parseHeld(output: string, member: string): MemberData {
  const kv = prefixedFields(output, 'held.')
  if (kv.get('done') !== '1') throw new HeldReadMissing(`the read of ${member}'s data did not run to its end`)
  const tool = (k: string) => {
    const v = kv.get(k)
    return v && isSafeAbsolutePath(v) ? v : undefined
  }
  const d: MemberData = { member, hasData: kv.get('member') === '1', state: 'none', tools: { etcdctl: tool('etcdctl'), etcdutl: tool('etcdutl') } }
  if (!d.hasData) return d
  const state = kv.get('state')
  if (state === 'running') {
    d.state = 'running'
    const text = kv.get('status')
    if (text === undefined) return { ...d, error: 'etcdctl not found: cannot ask the running member' }
    const st = parseLiveStatus(text)
    return typeof st === 'string' ? { ...d, error: `endpoint status: ${st}` } : { ...d, ...st }
  }
  if (state !== 'stopped') return { ...d, error: `unknown state ${JSON.stringify(state ?? '')}` }
  d.state = 'stopped'
  const wal = kv.get('wal')
  const ids = wal ? walIds(wal) : undefined
  if (ids) Object.assign(d, ids)
  const dbError = kv.get('db_error')
  if (dbError) return { ...d, error: dbError.slice(0, 200), damaged: dbError === 'no member/snap/db' || undefined }
  try {
    const facts = factsFromWalk(output, 'held.bolt.')
    // consistent_index: the last raft index applied to the db (its WAL may hold more, replayed on start).
    return { ...d, revision: facts.revision, ...(facts.consistentIndex ? { raftIndex: facts.consistentIndex } : {}) }
  } catch (err) {
    // Read and found unsound: a casualty. Not read at all: unknown.
    return { ...d, error: `member/snap/db: ${(err as Error).message}`, damaged: err instanceof BoltWalkUnavailable ? undefined : true }
  }
}

const DIGITS = /^\d{1,20}$/

function safeInt(v: unknown): number | undefined {
  const s = String(v)
  if (!DIGITS.test(s)) return undefined
  const n = Number(s)
  return Number.isSafeInteger(n) ? n : undefined
}

function hexOf(v: unknown): string | undefined {
  const s = String(v)
  return DIGITS.test(s) ? BigInt(s).toString(16) : undefined
}

/** `endpoint status -w json` of one member, or the reason it gave none. */
function parseLiveStatus(text: string): Pick<MemberData, 'revision' | 'raftIndex' | 'clusterId' | 'memberId' | 'noLeader'> | string {
  const start = text.indexOf('[{')
  if (start < 0) return lastWords(text)
  try {
    type Raw = Array<{ Status: { header: Record<string, unknown>; raftIndex?: unknown; errors?: unknown[] } }>
    const st = parseJsonExact<Raw>(text.slice(start, text.lastIndexOf(']') + 1))[0].Status
    const revision = safeInt(st.header.revision)
    if (revision === undefined) return `no revision in ${lastWords(text)}`
    const errors = Array.isArray(st.errors) ? st.errors.map(String) : []
    return {
      revision,
      raftIndex: safeInt(st.raftIndex),
      clusterId: hexOf(st.header.cluster_id),
      memberId: hexOf(st.header.member_id),
      noLeader: errors.some((e) => /no leader/.test(e)),
    }
  } catch {
    return `does not parse: ${lastWords(text)}`
  }
}

function lastWords(text: string): string {
  // etcdctl logs JSON lines; their "msg"/"error" say more than the whole line.
  const t = text.replace(/\{"level"[^}]*"(?:error|msg)":"([^"]*)"[^}]*\}/g, '$1').trim()
  return t.length > 200 ? `…${t.slice(-200)}` : t
}

/**
 * The member and cluster IDs from the first WAL record of type metadata (etcd
 * wal/walpb: frames of an 8-byte little-endian length, the top byte holding
 * padding; each a protobuf Record {type=1, crc=2, data=3}; metadata's data is
 * {NodeID=1, ClusterID=2}). `hex` is the file's first bytes as hex.
 */
export function walIds(hex: string): { memberId: string; clusterId: string } | undefined {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined
  const b = Buffer.from(hex, 'hex')
  let pos = 0
  for (let frame = 0; frame < 8 && pos + 8 <= b.length; frame++) {
    const lenField = b.readBigUInt64LE(pos)
    const len = Number(lenField & 0x00ffffffffffffffn)
    const pad = lenField >> 63n ? Number((lenField >> 56n) & 0x7n) : 0
    const rec = b.subarray(pos + 8, pos + 8 + len)
    if (rec.length < len || len === 0) return undefined
    const fields = tryReadFields(rec)
    if (!fields) return undefined
    if (fields.get(1) === 1n && fields.has(3)) {
      const meta = tryReadFields(fields.get(3) as Buffer)
      const node = meta?.get(1)
      const cluster = meta?.get(2)
      if (typeof node !== 'bigint' || typeof cluster !== 'bigint' || cluster === 0n) return undefined
      return { memberId: node.toString(16), clusterId: cluster.toString(16) }
    }
    pos += 8 + len + pad
  }
  return undefined
}
