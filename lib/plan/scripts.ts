// The remote scripts of a recovery, one per phase and member, as plain text
// built from quoted values. They are part of the plan (`--check` prints them)
// and each is safe to run again: a second run after an interruption picks up
// where the first stopped (see restoreScript's journal).
import { sh, type Script } from '../shell/sh.ts'
import { findPidsScript, startCommand, defaultLogFile, type EtcdProcessSpec } from '../etcd/process.ts'
import { restoreArgv, type RestoreSpec } from '../etcd/etcdctl.ts'
import type { MemberPaths } from './paths.ts'
import { unitStartScript, unitStopScript } from './systemd.ts'

/**
 * SHA-256 of a file, by OpenSSL when the host has it (SHA extensions: about 4x
 * coreutils' sha256sum here, 1.1 GB/s against 300 MB/s), else sha256sum.
 */
export const HASH_FILE: Script = sh`hash_file() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$1" | cut -c1-64; else sha256sum "$1" | cut -c1-64; fi
}`

/**
 * A file's identity: size, inode and change time (ns). Any rewrite or swap
 * changes it, and ctime cannot be set back, so a file whose identity matches
 * the one recorded when its hash was checked need not be hashed again.
 */
export const FILE_ID: Script = sh`file_id() { stat -c '%s:%i:%.9Z' "$1" 2>/dev/null; }`

/**
 * The state file's last restore line (`restored SHA TOKEN` or `complete SHA TOKEN`):
 * what the data dir holds, as the restore, the swap and the start all judge it.
 */
export const LAST_RESTORE: Script = sh`last_restore() { grep -E '^(restored|complete) ' "$1" 2>/dev/null | tail -n 1; }`

/**
 * Before a copy: is the same file already here, verified by an earlier upload and
 * unchanged since (`in-place=`: nothing to send)? Else is there room for it (else
 * it refuses, exit 1, before writing a byte)? It makes the work dir, and says
 * `created-work=` when it did, so a preflight that then fails can remove exactly
 * what the copy added. The copy may run while preflight's checks still run (it
 * overlaps them), so it checks for itself what it needs.
 */
export function uploadCheckScript(paths: MemberPaths, sha256: string, size: number): Script {
  return sh`${FILE_ID}
W=${paths.work}; S=${paths.snapshot}; J=${paths.state}; want=${sha256}; size=${size}
if [ -f "$S" ] && [ -f "$J" ] && grep -qxF "verified $want $(file_id "$S")" "$J"; then
  echo "in-place=$S"
  exit 0
fi
d="$W"; [ -d "$d" ] || d=$(dirname "$W")
free_kib=$(df -Pk "$d" | awk 'NR == 2 { print $4 }')
if [ -n "$free_kib" ] && [ "$free_kib" -lt $(( size / 1024 + 1 )) ]; then
  echo "No space left on device for the snapshot: $free_kib KiB free in $d, $(( size / 1024 + 1 )) KiB needed (nothing was written)" >&2
  exit 1
fi
if [ ! -d "$W" ]; then
  (umask 077; mkdir -p "$W") || exit 1
  echo "created-work=$W"
fi
# Whether it can take the file zstd-compressed.
! command -v zstd >/dev/null 2>&1 || echo "zstd=1"
echo "ready"`
}

/**
 * Reads the snapshot from stdin, checks it on the host (plain: its SHA-256; zstd:
 * below), then renames it into place. Each upload writes its own part file
 * (PART.<pid>): a retry over a new connection may start while the writer of a lost
 * one still runs, and must
 * not share (or have removed) its file. A failed write (disk full) removes its
 * part at once; parts whose writer is gone (a killed run) are removed first.
 * Only a file so proven is ever renamed to the name restore reads.
 * It reads all of its stdin whatever happens (a session sends exactly the file's
 * bytes and reads its next message after them), so nothing before the copy may end it.
 *
 * With `zstd`, stdin is one zstd frame with its content checksum, made here by
 * zstdStream from exactly the bytes whose SHA-256 it checked before it let the frame
 * end (lib/transfer/compress.ts). zstd -d checks that checksum (XXH64's low 32 bits
 * of what it wrote) and fails on a frame cut short, corrupt or without its end; the
 * size is checked too. (zstd -d would take a frame without a checksum: that the frame
 * has one rests on the sender, over the SSH channel's own integrity.) That proves the
 * file is the one hashed there, so it is not hashed again here: on a host without SHA
 * extensions that read would cost more than the copy (sha256sum, 300 MB/s).
 */
export function uploadReceiveScript(paths: MemberPaths, sha256: string, size: number, compressed?: 'zstd'): Script {
  const receive = compressed ? sh`zstd -dcq > "$P"` : sh`cat > "$P"`
  const check = compressed
    ? sh`got=$(stat -c %s "$P" 2>/dev/null)
[ "$got" = "$size" ] || corrupt "$got bytes after decompression, expected $size"`
    : sh`sum=$(hash_file "$P")
[ "$sum" = "$want" ] || corrupt "sha256 $sum, expected $want"`
  return sh`umask 077
${compressed ? sh`` : HASH_FILE}
${FILE_ID}
W=${paths.work}; P0=${paths.part}; S=${paths.snapshot}; J=${paths.state}; want=${sha256}; size=${size}
P="$P0.$$"
corrupt() { rm -f "$P"; echo "the copy on this host is corrupt: $1" >&2; exit 65; }
for f in "$P0".*; do
  [ -e "$f" ] || continue
  kill -0 "\${f##*.}" 2>/dev/null || rm -f "$f"
done
if ! ${receive}; then
  rm -f "$P"
  cat > /dev/null
  echo "writing the copy failed; the partial file was removed" >&2
  exit 1
fi
${check}
mv -f "$P" "$S" || exit 1
# The record restore checks for, and a later run's preflight trusts instead of hashing again.
echo "verified $want $(file_id "$S")" >> "$J" || exit 1
echo "copied=$S"`
}

/** Exit code of a compressed upload on a host without zstd (nothing was read or written). */
export const NO_ZSTD = 68

/**
 * The copy as one remote command (its own SSH exec): the check, then, unless in place
 * or refused, the receive. With `zstd`, a host without zstd exits NO_ZSTD before
 * reading anything, and the sender sends it plain.
 */
export function uploadScript(paths: MemberPaths, sha256: string, size: number, compressed?: 'zstd'): Script {
  const zstd = compressed ? sh`command -v zstd >/dev/null 2>&1 || { echo "no zstd on this host" >&2; exit ${NO_ZSTD}; }
` : sh``
  return sh`${zstd}check() {
${uploadCheckScript(paths, sha256, size)}
}
out=$(check) || exit 1
printf '%s\n' "$out"
case $out in in-place=*) exit 0 ;; esac
${uploadReceiveScript(paths, sha256, size, compressed)}`
}

/**
 * Takes back what an upload that overlapped a failed preflight added: the file and
 * its `verified` line, and the work dir when that upload made it. A file another
 * run left (in place before) is not touched.
 */
/** `createdWork`: the upload said it made the work dir (it goes, and a leftover is reported); 'if-empty': not known (it goes if empty). */
export function unUploadScript(paths: MemberPaths, sha256: string, createdWork: boolean | 'if-empty'): Script {
  return sh`${FILE_ID}
W=${paths.work}; P0=${paths.part}; S=${paths.snapshot}; J=${paths.state}; want=${sha256}; created=${createdWork === 'if-empty' ? 2 : createdWork ? 1 : 0}
for f in "$P0".*; do
  [ -e "$f" ] || continue
  kill -0 "\${f##*.}" 2>/dev/null || rm -f "$f"
done
if [ -f "$S" ]; then
  line="verified $want $(file_id "$S")"
  rm -f "$S"
  if [ -f "$J" ]; then
    grep -vxF "$line" "$J" > "$J.tmp" || true
    if [ -s "$J.tmp" ]; then mv -f "$J.tmp" "$J"; else rm -f "$J.tmp" "$J"; fi
  fi
fi
if [ "$created" = 1 ]; then rmdir "$W" 2>/dev/null || echo "left=$W (not empty)"; fi
if [ "$created" = 2 ]; then rmdir "$W" 2>/dev/null || true; fi
echo "removed=$S"`
}

export interface StopSpec {
  service: 'systemd' | 'process'
  serviceName: string
  /** The unit as preflight read it (UnitConfig.loaded): the stop step's arm of the hold checks it is still what systemd has loaded. */
  unitLoaded?: readonly string[]
  dataDir: string
  ports: number[]
}

/**
 * Stops this member's etcd and confirms it is gone: systemctl stop for a unit,
 * then (in both modes) any etcd process still holding the member's data dir or
 * ports, TERM first, KILL after 3 s. etcd's data is crash-safe (bbolt and the
 * WAL), and a leader whose peers are gone can spend many seconds trying to hand
 * over leadership: waiting longer buys the set-aside data nothing. Other etcds
 * on the host are not touched.
 */
export function stopScript(s: StopSpec): Script {
  const unit = s.service === 'systemd' ? unitStopScript(s.serviceName, undefined, s.unitLoaded) : sh``
  return sh`${unit}
find_pids() { ${findPidsScript(s.dataDir, s.ports)}
}
pids=$(find_pids | tr '\\n' ' ')
if [ -z "$pids" ]; then echo "stopped=none-running"; exit 0; fi
kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt 30 ]; do
  left=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  [ -z "$left" ] && { echo "stopped=$pids"; exit 0; }
  sleep 0.1; i=$((i + 1))
done
kill -KILL $left 2>/dev/null; sleep 0.5
for p in $left; do kill -0 "$p" 2>/dev/null && { echo "etcd pid $p does not stop" >&2; exit 1; }; done
echo "stopped=$pids (killed:$left)"`
}

export interface RestoreScriptSpec {
  paths: MemberPaths
  /** The member's ports: an etcd still listening there (or on the data dir) stops the swap. */
  ports: number[]
  restore: Omit<RestoreSpec, 'dataDir' | 'snapshot'>
  sha256: string
  mountpoint: boolean
  etcdUser?: string
  /** A systemd member's unitArmScript: run beside the restore, so the stop step needs no reload. */
  arm?: Script
}

/** The journal line the swap writes once the restored data is in place; start and a later run check it. */
export const restoredMark = (sha256: string, token: string) => `restored ${sha256} ${token}`

/**
 * Restores the snapshot into a fresh temporary dir beside the data dir (same
 * filesystem): the member's own identity, its files owned by etcd's user. Nothing
 * of the member is touched, so it runs while the old etcd still does, as soon as
 * this host's copy is verified. A member already restored by an earlier run with
 * this snapshot and token is left alone. Our own half-written temp dir from an
 * interrupted run is removed; it never holds user data.
 */
export function restoreScript(s: RestoreScriptSpec): Script {
  const p = s.paths
  const argv = restoreArgv({ ...s.restore, snapshot: p.snapshot, dataDir: p.restoreTmp })
  const chown = s.etcdUser ? sh`chown -R ${`${s.etcdUser}:`} "$T"` : sh``
  // The unit's hold, armed in the background while etcdutl runs (inert until the stop step
  // creates its file); waited for on every way out, so nothing of the step outlives it.
  const arm = s.arm ? sh`( ${s.arm}
) > "$W/arm.log" 2>&1 &
armpid=$!
trap 'wait "$armpid" 2>/dev/null || :' EXIT` : sh``
  // The trap's own status must not become the script's (bash as sh gives a second wait 127).
  // A unit that changed under the hold's reload (exit 3) fails the step: no member is stopped.
  const armed = s.arm ? sh`if wait "$armpid"; then echo "hold.armed=1"
else
  rc=$?
  if [ $rc -eq 3 ]; then trap - EXIT; cat "$W/arm.log" >&2; rm -rf "$T"; exit 1; fi
  echo "hold.arm-failed=$(tail -n 1 "$W/arm.log")"
fi
trap - EXIT` : sh``
  return sh`set -e
D=${p.dataDir}; T=${p.restoreTmp}; J=${p.state}; W=${p.work}; S=${p.snapshot}; sha=${s.sha256}; mark=${restoredMark(s.sha256, s.restore.token)}
umask 077
${HASH_FILE}
${FILE_ID}
${LAST_RESTORE}
mkdir -p "$W"
if [ "$(last_restore "$J")" = "$mark" ] && [ -d "$D/member" ]; then
  echo "restore=already-done"; exit 0
fi
# Invariant, checked right before the step it guards: a member is restored only from a file whose hash was checked on this host.
if ! grep -qx "verified $sha $(file_id "$S")" "$J" 2>/dev/null && [ "$(hash_file "$S")" != "$sha" ]; then
  echo "$S is not the snapshot verified on this host (sha256 $sha): it changed since the copy; run again to copy it anew" >&2; exit 1
fi
rm -rf "$T"   # our own temp dir from an interrupted run, never user data
# Restore dirs of earlier runs (other tokens) that ended before their swap: ours too, each the
# size of the restored db; left, every such run would leave one more.
for x in "$W"/restore-* "$D"/.etcd-rescue-restore-*; do
  [ -d "$x" ] && [ "$x" != "$T" ] || continue   # ($T is gone already: the rule, should the order change)
  rm -rf "$x" && echo "stale.removed=$x"
done
${arm}
if ! ${argv} > "$W/restore.log" 2>&1; then
  tail -n 20 "$W/restore.log" >&2; rm -rf "$T"; exit 1
fi
[ -d "$T/member" ] || { echo "snapshot restore produced no member dir in $T" >&2; exit 1; }
chmod 700 "$T"
${chown}
${armed}
echo "restore=ready $T"`
}

export interface SwapScriptSpec {
  paths: MemberPaths
  ports: number[]
  sha256: string
  token: string
  mountpoint: boolean
  etcdUser?: string
}

/**
 * Moves the old data aside and the restored data (restoreScript's) in: renames
 * on one filesystem, run once this member's etcd is stopped. The journal
 * (paths.state) makes it resumable: `aside PATH` is written before old data
 * moves, `restored SHA TOKEN` after the new data is in place, so a second run
 * never sets aside twice. Old data is moved, never deleted.
 */
export function swapScript(s: SwapScriptSpec): Script {
  const p = s.paths
  const move = s.mountpoint
    ? sh`# The data dir is a mount point: it stays, its contents move into a dir on the same disk.
old=$(ls -A "$D" | grep -v -e '^lost+found$' -e '^etcd-rescue-old-' -e '^\.etcd-rescue-restore-' || true)
if [ -n "$old" ]; then
  echo "aside $A" >> "$J"
  mkdir -p "$A"
  printf '%s\\n' "$old" | while IFS= read -r f; do mv "$D/$f" "$A/"; done
  echo "set-aside=$A"
fi
mv "$T/member" "$D/member"
rmdir "$T"
chmod 700 "$D"
${s.etcdUser ? sh`chown ${`${s.etcdUser}:`} "$D"` : sh``}`
    : sh`if [ -d "$D" ] && [ -z "$(ls -A "$D")" ]; then
  rmdir "$D"   # an empty dir holds nothing to keep
elif [ -e "$D" ]; then
  echo "aside $A" >> "$J"
  mv "$D" "$A"
  echo "set-aside=$A"
fi
mv "$T" "$D"`
  return sh`set -e
D=${p.dataDir}; T=${p.restoreTmp}; J=${p.state}; A=${p.aside}; mark=${restoredMark(s.sha256, s.token)}
umask 077
${LAST_RESTORE}
if [ "$(last_restore "$J")" = "$mark" ] && [ -d "$D/member" ]; then
  echo "swap=already-done"; exit 0
fi
# Invariants, checked right before the step they guard: old data is never moved while an etcd still uses it ...
find_pids() { ${findPidsScript(p.dataDir, s.ports)}
}
pids=$(find_pids | tr '\\n' ' ')
if [ -n "$pids" ]; then echo "etcd (pid $pids) still uses $D: its data is not moved while it runs" >&2; exit 1; fi
# ... and only a finished restore is moved in.
[ -d "$T/member" ] || { echo "no restored data in $T (its restore did not finish): run again to restore it" >&2; exit 1; }
${move}
echo "$mark" >> "$J"
echo "swap=done"`
}

/**
 * Marks this snapshot and token done once the cluster is verified, so a later
 * recovery from the same snapshot restores afresh instead of "resuming".
 */
export function completeScript(paths: MemberPaths, sha256: string, token: string): Script {
  return sh`echo ${`complete ${sha256} ${token}`} >> ${paths.state}`
}

/**
 * The run's last step on a host, once the cluster is verified: the journal's mark
 * (completeScript), then, only once it is in, the work dir tidied (tidyScript).
 * Prints `marked=1` after the mark; exits 1 if it could not be written.
 */
export function closingScript(paths: MemberPaths, sha256: string, token: string, keep?: string): Script {
  return sh`if ${completeScript(paths, sha256, token)}
then echo marked=1
${tidyScript(paths, keep)}
else exit 1
fi`
}

/**
 * After the proof and the journal's mark: removes the copied snapshot from the
 * work dir, and any an earlier run with another snapshot left. Each is a whole
 * copy of the database, Secrets and all, needed only to finish a recovery; left,
 * every recovery or drill from a new snapshot would leave one more. `keep` is a
 * file the operator named (--snapshot HOST:PATH) that happens to lie there.
 * Prints `removed=FILE` or `left=FILE`; never fails.
 */
export function tidyScript(paths: MemberPaths, keep?: string): Script {
  return sh`W=${paths.work}; K=${keep ?? ''}
for f in "$W"/snapshot-*.db "$W"/snapshot-*.db.part*; do
  [ -f "$f" ] && [ "$f" != "$K" ] || continue
  if rm -f "$f"; then echo "removed=$f"; else echo "left=$f"; fi
done
true`
}

/** Starts the member and returns at once; a running member is left alone. */
export function startScript(s: StopSpec & { process: EtcdProcessSpec; restored: { state: string; mark: string } }): Script {
  // Invariant, checked right before the start: the data dir holds this run's restore, never old data.
  const guard = sh`${LAST_RESTORE}
J=${s.restored.state}; mark=${s.restored.mark}
if [ "$(last_restore "$J")" != "$mark" ]; then
  echo "the data dir does not hold this recovery's restore ($mark not last in $J): not starting it" >&2; exit 1
fi`
  if (s.service === 'systemd') return sh`${guard}
${unitStartScript(s.serviceName)}`
  return sh`${guard}
running=$( { ${findPidsScript(s.dataDir, s.ports)}
} | tr '\\n' ' ')
if [ -n "$running" ]; then echo "started=already-running $running"; exit 0; fi
${startCommand(s.process)}
L=${s.process.logFile ?? defaultLogFile(s.process.name)}
echo "started=process log $L"`
}

/** The last lines of the member's log, for a member that does not come up. */
export function logTailScript(s: { service: 'systemd' | 'process'; serviceName: string; logFile: string }, lines = 20): Script {
  return s.service === 'systemd'
    ? sh`journalctl -u ${s.serviceName} -n ${lines} --no-pager 2>&1 || true`
    : sh`tail -n ${lines} ${s.logFile} 2>&1 || true`
}
