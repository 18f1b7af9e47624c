// Stopping and starting a member run by systemd so that nothing brings the old
// member back behind the tool's back. `systemctl stop` alone is enough against
// Restart= of any policy (systemd restarts only a unit that exited on its own),
// but not against something else starting the unit between the stop and the
// restored data being in place: a dependency, a timer, an operator's reflex, or
// a kubelet-style watchdog. Such a start would run the old member on data being
// moved, or a brand-new one-member cluster on an empty dir.
//
// So the unit is held: a runtime drop-in (in /run, gone at reboot) asserts that a
// hold file does not exist, and the stop step creates that file before it stops
// the unit. While it exists every start of the unit fails, loudly ("Assertion
// failed on job for etcd.service"; `systemctl status` names the file), whoever
// asks, Restart= included. The drop-in is loaded beside the restore (inert
// without the file), the stop step creates the file, and the start step removes
// it and starts the unit: no reload of systemd between the stop and the start.
// The drop-in, inert again, is removed by a step of its own right after the
// start, while etcd's first election runs.
//
// Not `systemctl mask --runtime`, which this tool used before: a runtime mask
// lives in /run/systemd/system, and a unit file in /etc/systemd/system (where
// kubespray and most hand-made set-ups put etcd.service) takes precedence over
// it, so the unit was not masked at all there; and it cost a reload of systemd
// to mask and another to unmask, the second between the swap and the start.
//
// A run interrupted between stop and start leaves the hold, and says so; running
// again finishes and removes it (or: rm the hold file, and the unit starts again).
import { sh, type Script } from '../shell/sh.ts'
import { unitLoadedFn } from './unit.ts'

export interface UnitHold {
  /** The unit's file name: etcd_service_name, `.service` added when it has no suffix. */
  unit: string
  /** While this file exists, every start of the unit fails. */
  file: string
  /** The runtime drop-in that says so. */
  dropIn: string
}

/**
 * Where the hold of a member's unit lives on its host. `serviceName` is a
 * validated unit name (no '/', no '%'); `root` stands for / in tests only.
 */
export function unitHold(serviceName: string, root = ''): UnitHold {
  const unit = serviceName.endsWith('.service') ? serviceName : `${serviceName}.service`
  return { unit, file: `${root}/run/etcd-rescue/${unit}.hold`, dropIn: `${root}/run/systemd/system/${unit}.d/zz-etcd-rescue-hold.conf` }
}

/** The drop-in's text: a comment for whoever finds it, and the assertion. */
export function holdDropInLines(h: UnitHold): string[] {
  return [
    `# Written by etcd-rescue, which is replacing this member's data. While ${h.file}`,
    '# exists every start of this unit fails. etcd-rescue removes that file when it',
    '# starts the unit, and this file after; both are in /run and gone at reboot.',
    '[Unit]',
    `AssertPathExists=!${h.file}`,
  ]
}

/** Sets U, H (hold file) and F (drop-in) for the scripts below. */
function holdVars(serviceName: string, root?: string): Script {
  const h = unitHold(serviceName, root)
  return sh`U=${serviceName}; H=${h.file}; F=${h.dropIn}`
}

/**
 * Loads the hold's drop-in unless systemd has it already: written, then one
 * reload, then checked (DropInPaths names it). Without the hold file it is
 * inert, so the restore step arms it while etcdutl runs, off the way from the
 * stop to the start; the stop step arms it itself where that did not happen.
 * Exits 1, saying why, if systemd does not load it.
 *
 * `loaded` is the unit as preflight read it (UnitConfig.loaded). A reload loads
 * every change on disk, and then the unit would start a member preflight never
 * checked: so before its reload the arm exits 3 if NeedDaemonReload is yes (a
 * loaded file changed since preflight, which required no; nothing written), and
 * after it if the unit as loaded now differs from `loaded` (new files systemd
 * never flags, see unitLoadedFn; the drop-in stays, inert). Either way it says
 * why on stderr, its last line the reason.
 */
export function unitArmScript(unit: string, root?: string, loaded?: readonly string[]): Script {
  return sh`${holdVars(unit, root)}
${armBody(unit, root, loaded)}`
}

/** unitArmScript without setting its variables, for a script that has set them. */
function armBody(unit: string, root?: string, loaded?: readonly string[]): Script {
  // An edit to a file systemd has loaded: NeedDaemonReload says so (preflight refused it when
  // it did), and a reload would load it unchecked. Asked before the drop-in is written, which
  // systemd may count as a change of its own.
  const unflagged = loaded?.length ? sh`case $(systemctl show -p NeedDaemonReload -- "$U" 2>/dev/null) in
  *=yes) echo "$U has changed since preflight read it (NeedDaemonReload=yes: a file of it changed on disk and is not loaded yet; on systemd 255 and later also any enable or disable without a reload): this member was not stopped; run again, and preflight checks the unit as it is now" >&2; exit 3 ;;
esac` : sh``
  // New files systemd never flagged (see unitLoadedFn), loaded by the reload: the unit as
  // loaded now against preflight's read. What changed (at most 6 lines), then the reason:
  // the last line is the step's summary.
  const same = loaded?.length ? sh`${unitLoadedFn()}
P=${loaded.join('\n')}
now=$(unit_loaded)
if [ -z "$now" ]; then echo "systemctl show printed nothing for $U after the reload: whether it is still the unit preflight checked is unknown; this member was not stopped" >&2; exit 3; fi
if [ "$now" != "$P" ]; then
  d=$(printf '%s\\n' "$P" | while IFS= read -r l; do printf '%s\\n' "$now" | grep -qxF -- "$l" || printf '%s\\n' "- $l"; done
    printf '%s\\n' "$now" | while IFS= read -r l; do printf '%s\\n' "$P" | grep -qxF -- "$l" || printf '%s\\n' "+ $l"; done)
  # Each property's old line, then its new one.
  d=$(printf '%s\\n' "$d" | LC_ALL=C sort -s -t = -k 1.3,1)
  printf '%s\\n' "$d" | head -n 6 | sed 's/^/  /' >&2
  what=$(printf '%s\\n' "$d" | sed -n 's/^[-+] \\([A-Za-z]*\\)=.*/\\1/p' | LC_ALL=C sort -u | tr '\\n' ' ')
  echo "$U has changed since preflight read it (\${what:-its properties }differ as loaded now; systemd need not flag a new unit file or drop-in dir, which a reload loads): this member was not stopped; run again, and preflight checks the unit as it is now" >&2
  exit 3
fi` : sh``
  return sh`umask 022   # systemctl cat and status, run by anyone, read the drop-in
# (Not show --value here or anywhere: systemd 219, RHEL 7's, does not have it.)
held() { systemctl show -p DropInPaths -- "$U" 2>/dev/null | sed -n 's/^DropInPaths=//p' | tr ' ' '\\n' | grep -qxF "$F"; }
if ! held; then
  ${unflagged}
  { mkdir -p "\${F%/*}" && printf '%s\\n' ${holdDropInLines(unitHold(unit, root))} > "$F.tmp" && mv -f "$F.tmp" "$F"; } || { echo "cannot write $F to hold $U for the recovery" >&2; exit 1; }
  systemctl daemon-reload || { echo "systemctl daemon-reload failed: $U is not held for the recovery" >&2; exit 1; }
  held || { echo "systemd did not load $F after a reload: $U is not held for the recovery" >&2; exit 1; }
fi
${same}`
}

/**
 * Holds the unit (its drop-in armed if the restore step did not, then the hold
 * file), stops it, then confirms it is down; a unit it could not ask to stop is
 * left unheld. Prints `unit.stopped=STATE MAINPID[ killed]`. A unit that is not
 * the one preflight checked (`loaded`, see unitArmScript) is not stopped: exit 3.
 */
export function unitStopScript(unit: string, root?: string, loaded?: readonly string[]): Script {
  return sh`${holdVars(unit, root)}
was=$(systemctl is-active "$U" 2>/dev/null)
main=$(systemctl show -p MainPID -- "$U" 2>/dev/null | sed -n 's/^MainPID=//p')
${armBody(unit, root, loaded)}
mkdir -p "\${H%/*}" && : > "$H" || { echo "cannot create $H to hold $U for the recovery" >&2; exit 1; }
# A clean stop gets 3 s: a leader whose peers are stopping too can spend many
# seconds handing over leadership, and the data is crash-safe and set aside anyway.
systemctl stop --no-block "$U" || { rm -f "$H"; exit 1; }
i=0; killed=
while :; do
  now=$(systemctl is-active "$U" 2>/dev/null)
  case "$now" in active|activating|reloading|deactivating|refreshing) ;; *) break ;; esac
  if [ $i -eq 30 ]; then systemctl kill -s KILL "$U" 2>/dev/null; killed=" killed"; fi
  if [ $i -ge 80 ]; then echo "$U is still $now after systemctl stop and kill -s KILL; it stays held (every start fails) until $H is removed" >&2; exit 1; fi
  sleep 0.1; i=$((i + 1))
done
echo "unit.stopped=\${was:-unknown} \${main:-0}$killed"`
}

/**
 * Lifts the hold and starts the unit without waiting: a unit of Type=notify is
 * "activating" until the member has a quorum, which needs the others started
 * too. Whether it came up is confirmed afterwards with is-active. No reload of
 * systemd here: the drop-in stays loaded, inert, until unitDisarmScript.
 */
export function unitStartScript(unit: string, root?: string): Script {
  return sh`${holdVars(unit, root)}
rm -f "$H" || { echo "cannot remove $H: $U stays held" >&2; exit 1; }
systemctl reset-failed "$U" 2>/dev/null || true
systemctl start --no-block "$U" || exit 1
echo "started=unit $U"`
}

/**
 * Removes the hold's drop-in, inert since the start, and reloads systemd: run
 * right after the start step, beside the quorum wait, off the way to it.
 * Prints `hold.removed=FILE`, or `hold.left=FILE` where removing or the reload
 * failed, or `hold.kept=HOLD` where a hold file exists again (then the drop-in
 * still holds a unit someone is keeping down, and stays). Never fails.
 */
export function unitDisarmScript(unit: string, root?: string): Script {
  return sh`${holdVars(unit, root)}
if [ -e "$H" ]; then echo "hold.kept=$H"; exit 0; fi
rmdir "\${H%/*}" 2>/dev/null
[ -e "$F" ] || exit 0
rm -f "$F" && rmdir "\${F%/*}" 2>/dev/null
if [ ! -e "$F" ] && systemctl daemon-reload 2>/dev/null; then echo "hold.removed=$F"; else echo "hold.left=$F"; fi
true`
}

/** Prints the unit's state (active, activating, failed, ...); never fails. */
export function unitStateScript(unit: string): Script {
  return sh`systemctl is-active ${unit} 2>/dev/null || true`
}
