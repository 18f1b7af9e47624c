// The walk of bolt.ts, run on the host that holds the file, in the same remote
// command as the rest of a probe: a stopped member's member/snap/db (or a
// snapshot given as HOST:PATH) yields its revision and raft index without being
// copied, opened by etcd, or fetched page by page over more round trips.
//
// It is written in POSIX awk (mawk, gawk, busybox awk) and reads only the bytes
// it needs, each through `od` on the file: the meta pages, then each page's
// header, element table and the keys it compares, along the path to the last key
// of bucket "key" and to "consistent_index" in bucket "meta". awk cannot compute
// bbolt's 64-bit FNV checksum, so it walks from both meta pages and prints their
// bodies; `factsFromWalk` checks the checksums here and keeps the walk of the
// valid meta page with the higher transaction ID, exactly as bolt.ts (and bbolt)
// choose. Everything the host prints is held to a grammar before use: hex of
// fixed lengths, nothing else.
import { prefixedFields } from '../shell/output.ts'
import { sh, type Script } from '../shell/sh.ts'
import { BoltFormatError, parseMeta, toNumber, type BoltFacts } from './bolt.ts'

// The path reaches od only as "$BOLT_F", an environment variable's expansion in
// the command awk hands to sh: never as text. Numbers are printed with %.0f,
// exact for every integer below 2^53 (mawk's %d stops at 2^31 on some builds).
const WALK_AWK = String.raw`
function hx(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
function le(s, at, n,   i, v) { v = 0; for (i = n - 1; i >= 0; i--) v = v * 256 + hx(substr(s, 2 * (at + i) + 1, 2)); return v }
function num(x) { return sprintf("%.0f", x) }
function rd(off, len,   cmd, line, s) {
  if (E != "" || len <= 0) return ""
  if (++READS > 2000) { E = "gave up after 2000 reads of the file"; return "" }
  if (off + len > SIZE) { E = "the file is cut short: " num(len) " bytes at " num(off) " past its end"; return "" }
  cmd = "od -An -v -tx1 -j " num(off) " -N " num(len) " -- \"$BOLT_F\""
  s = ""
  while ((cmd | getline line) > 0) { gsub(/[^0-9a-f]/, "", line); s = s line }
  close(cmd)
  if (length(s) != 2 * len) E = "cannot read " num(len) " bytes at " num(off)
  return s
}
# The tree page at [base, end) whose first bytes (up to a page) are NH: its header.
function node(base, end,   fl) {
  NB = base; NE = end
  if (length(NH) < 32) { E = "a page header is cut short"; return }
  fl = le(NH, 8, 2); NC = le(NH, 10, 2); NL = int(fl / 2) % 2
  if (fl % 4 == 0) { E = "not a tree page (flags " fl ")"; return }
  if (16 + NC * 16 > end - base) E = "page elements past its end"
}
# An inline page (inside a bucket value).
function load(base, end) {
  NH = rd(base, end - base < PS ? end - base : PS)
  if (E == "") node(base, end)
}
# Page id: its first page read once, header and element table included.
function page(id,   ov) {
  if (E != "") return
  if (id < 2 || id >= PAGES) { E = "page id " num(id) " out of range"; return }
  NH = rd(id * PS, PS)
  if (E != "") return
  ov = le(NH, 12, 4)
  if (ov > 1048576) { E = "page " num(id) ": overflow " num(ov); return }
  if ((id + ov + 1) * PS > SIZE) { E = "page " num(id) " is cut short: the file is truncated"; return }
  node(id * PS, (id + ov + 1) * PS)
}
function bytes(off, len) {
  if (E != "") return ""
  if (off < NB || off + len > NE) { E = "element points outside its page"; return "" }
  if (2 * (off + len - NB) <= length(NH)) return substr(NH, 2 * (off - NB) + 1, 2 * len)
  return rd(off, len)
}
function lkey(i,   e, f) {
  e = NB + 16 + 16 * i; f = bytes(e, 16)
  if (E != "") return ""
  KF = le(f, 0, 4); VO = e + le(f, 4, 4) + le(f, 8, 4); VS = le(f, 12, 4)
  if (VO + VS > NE) { E = "element points outside its page"; return "" }
  return bytes(e + le(f, 4, 4), le(f, 8, 4))
}
function bkey(i,   e, f) {
  e = NB + 16 + 16 * i; f = bytes(e, 16)
  if (E != "") return ""
  CH = le(f, 8, 8)
  return bytes(e + le(f, 0, 4), le(f, 4, 4))
}
function find(k,   d, i, c, key) {
  for (d = 0; d <= 64; d++) {
    if (E != "") return 0
    if (NL) {
      for (i = 0; i < NC; i++) { key = lkey(i); if (E != "") return 0; if (("x" key) == ("x" k)) return 1 }
      return 0
    }
    if (NC == 0) return 0
    bkey(0); c = CH
    for (i = 1; i < NC; i++) { key = bkey(i); if (E != "") return 0; if (("x" key) <= ("x" k)) c = CH; else break }
    page(c)
  }
  E = "tree deeper than 64 levels: a loop?"; return 0
}
function bucket(name,   v, r) {
  page(ROOT)
  if (!find(name)) return 0
  if (KF % 2 == 0) { E = "not a bucket"; return 0 }
  if (VS < 16) { E = "bucket header too short"; return 0 }
  v = bytes(VO, 16); r = le(v, 0, 8)
  if (E != "") return 0
  if (r == 0) load(VO + 16, VO + VS); else page(r)
  return E == ""
}
function lastkey(   d) {
  for (d = 0; d <= 64; d++) {
    if (E != "" || NC == 0) return ""
    if (NL) return lkey(NC - 1)
    bkey(NC - 1); page(CH)
  }
  E = "tree deeper than 64 levels: a loop?"; return ""
}
function walk(m,   k, rev, ci) {
  E = ""; ROOT = le(m, 32, 8); PAGES = le(m, 56, 8)
  if (!bucket("6b6579")) { if (E == "") E = "no key bucket: not an etcd v3 database"; return "error " E }
  k = lastkey()
  if (E != "") return "error " E
  rev = length(k) >= 16 ? substr(k, 1, 16) : "0"
  ci = "0"
  if (bucket("6d657461") && find("636f6e73697374656e745f696e646578") && KF % 2 == 0 && VS == 8) ci = bytes(VO, 8)
  if (E != "") return "error " E
  return "ok " rev " " ci
}
function pow2(n) { while (n > 1 && n % 2 == 0) n = n / 2; return n == 1 }
BEGIN {
  SIZE = size + 0
  m0 = rd(0, 80)
  if (E != "") { print p "error=" E; exit }
  # The page size meta page 0 states; when it is no page size (meta 0 damaged), the
  # first of the usual ones at which meta page 1 sits, as bbolt falls back to the OS's.
  PS = le(m0, 24, 4)
  if (!(PS >= 512 && PS <= 65536 && pow2(PS))) {
    PS = 0
    for (j = 4096; j <= 65536 && !PS; j *= 4) { h = rd(j + 16, 4); E = ""; if (length(h) == 8 && le(h, 0, 4) == 3977042669) PS = j }
    if (!PS) { print p "error=no meta page: not a bbolt database"; exit }
  }
  m1 = rd(PS, 80); E = ""
  for (i = 0; i < 2; i++) {
    m = i ? m1 : m0
    if (length(m) != 160) continue
    print p "meta." i "=" substr(m, 33)
    if (le(m, 16, 4) == 3977042669 && le(m, 20, 4) == 2) print p "walk." i "=" walk(m)
  }
  print p "done=1"
}
`

/**
 * Shell that prints `<prefix>meta.N=`, `<prefix>walk.N=` and `<prefix>done=1`
 * lines (or `<prefix>error=`) for the bbolt file whose path is in the shell
 * variable BOLT_F (set by the caller's script). Needs awk and od; says so when
 * they are missing.
 */
export function boltWalkScript(prefix: string): Script {
  if (!/^[a-z.]+$/.test(prefix)) throw new TypeError(`not a plain prefix: ${prefix}`)
  // The size from stat: busybox's wc counts in 32 bits (a 4.6 GiB db would look cut short).
  return sh`if ! command -v awk >/dev/null 2>&1 || ! command -v od >/dev/null 2>&1; then echo ${`${prefix}error=${TOOLS_MISSING}`}
elif [ ! -r "$BOLT_F" ] || ! bolt_size=$(stat -L -c %s -- "$BOLT_F" 2>/dev/null || wc -c < "$BOLT_F" 2>/dev/null); then echo ${`${prefix}error=${CANNOT_READ} the file`}
else BOLT_F="$BOLT_F" LC_ALL=C awk -v p=${prefix} -v size="$bolt_size" ${WALK_AWK} </dev/null; fi`
}

const TOOLS_MISSING = 'awk or od not found'
const CANNOT_READ = 'cannot read'
const GAVE_UP = 'gave up'

/**
 * The walk could not look at the data (no awk or od, the file unreadable): what
 * the file holds is unknown. A BoltFormatError instead means the walk read it
 * and it is not a sound etcd database.
 */
export class BoltWalkUnavailable extends Error {}

/** The facts the walk found, from its output: only the walk of the valid meta page with the highest txid counts. */
export function factsFromWalk(output: string, prefix: string): BoltFacts {
  const kv = prefixedFields(output, prefix)
  const error = kv.get('error')
  if (error !== undefined) throw failure(error)
  // awk or od died (killed, out of memory, an awk that refuses the program): nothing was judged.
  if (kv.get('done') !== '1') throw new BoltWalkUnavailable('the walk of the database did not run to its end')
  let best: { txid: bigint; walk?: string } | undefined
  for (const n of ['0', '1']) {
    const hex = kv.get(`meta.${n}`)
    if (!hex || !/^[0-9a-f]{128}$/.test(hex)) continue
    const meta = parseMeta(Buffer.from(hex, 'hex'))
    if (meta && (!best || meta.txid > best.txid)) best = { txid: meta.txid, walk: kv.get(`walk.${n}`) }
  }
  if (!best) throw new BoltFormatError('no valid meta page (bad magic or checksum)')
  const ok = /^ok ([0-9a-f]{16}|0) ([0-9a-f]{16}|0)$/.exec(best.walk ?? '')
  if (!ok) {
    const why = /^error (.+)$/.exec(best.walk ?? '')
    throw why ? failure(why[1]) : new BoltFormatError(`the walk's answer does not parse: ${plain(best.walk ?? '(none)')}`)
  }
  return { revision: toNumber(BigInt(`0x${ok[1]}`)), consistentIndex: toNumber(BigInt(`0x${ok[2]}`)) }
}

function failure(error: string): Error {
  const text = plain(error)
  return [TOOLS_MISSING, CANNOT_READ, GAVE_UP].some((w) => error.startsWith(w)) ? new BoltWalkUnavailable(text) : new BoltFormatError(text)
}

/** A host's words, for a message: printable, short. */
function plain(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, '?')
  return t.length > 200 ? `${t.slice(0, 200)}…` : t
}
