// Stopping and starting a member run by systemd so that nothing brings the old
// member back behind the tool's back. `systemctl stop` alone is enough against
// Restart= of any policy (systemd restarts only a unit that exited on its own),
// but not against something else starting the unit between the stop and the
// restored data being in place: a dependency, a timer, an operator's reflex, or
// a kubelet-style watchdog. Such a start would run the old member on data being
// moved, or a brand-new one-member cluster on an empty dir. So the unit is
// masked for this boot only (--runtime: a link in /run, gone at reboot) before it
// is stopped, and unmasked by the start step. A run interrupted in between
// leaves the mask, and says so; running again finishes and removes it.
import { sh, type Script } from '../shell/sh.ts'

/** Masks (runtime) and stops the unit, then confirms it is down. Prints `unit.stopped=STATE MAINPID[ killed]`. */
export function unitStopScript(unit: string): Script {
  return sh`U=${unit}
was=$(systemctl is-active "$U" 2>/dev/null)
main=$(systemctl show -p MainPID --value -- "$U" 2>/dev/null)
systemctl mask --runtime --quiet "$U" || { echo "cannot mask $U for the recovery" >&2; exit 1; }
# A clean stop gets 3 s: a leader whose peers are stopping too can spend many
# seconds handing over leadership, and the data is crash-safe and set aside anyway.
systemctl stop --no-block "$U" || exit 1
i=0; killed=
while :; do
  now=$(systemctl is-active "$U" 2>/dev/null)
  case "$now" in active|activating|reloading|deactivating|refreshing) ;; *) break ;; esac
  if [ $i -eq 30 ]; then systemctl kill -s KILL "$U" 2>/dev/null; killed=" killed"; fi
  if [ $i -ge 80 ]; then echo "$U is still $now after systemctl stop and kill -s KILL" >&2; exit 1; fi
  sleep 0.1; i=$((i + 1))
done
echo "unit.stopped=\${was:-unknown} \${main:-0}$killed"`
}

/**
 * Unmasks and starts the unit without waiting: a unit of Type=notify is
 * "activating" until the member has a quorum, which needs the others started
 * too. Whether it came up is confirmed afterwards with is-active.
 */
export function unitStartScript(unit: string): Script {
  return sh`U=${unit}
systemctl unmask --runtime --quiet "$U" 2>/dev/null || true
systemctl reset-failed "$U" 2>/dev/null || true
systemctl start --no-block "$U"
echo "started=unit $U"`
}

/** Prints the unit's state (active, activating, failed, ...); never fails. */
export function unitStateScript(unit: string): Script {
  return sh`systemctl is-active ${unit} 2>/dev/null || true`
}
