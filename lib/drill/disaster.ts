// What a drill does to a healthy cluster. Members are killed hard (SIGKILL: no
// clean shutdown, as in a real loss) and their data wrecked in place: the WAL
// removed and the db's first pages overwritten, so etcd cannot start from it.
// Only the member's own etcd is matched (by data dir or ports), never by name.
import { findPidsScript } from '../etcd/process.ts'
import { sh, type Script } from '../shell/sh.ts'

export const SCENARIOS = ['total-loss', 'quorum-loss', 'quorum-loss-after-writes', 'corrupt-member', 'corrupt-snapshot', 'unreachable-host'] as const
export type Scenario = (typeof SCENARIOS)[number]

/** Scenarios where recovery must refuse before any change. */
export const NEGATIVE: ReadonlySet<Scenario> = new Set(['corrupt-snapshot', 'unreachable-host'])

export function killScript(dataDir: string, ports: number[]): Script {
  return sh`pids=$( { ${findPidsScript(dataDir, ports)}
} | tr '\\n' ' ')
[ -n "$pids" ] && kill -KILL $pids
for i in 1 2 3 4 5 6 7 8 9 10; do
  alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break; sleep 0.2
done
echo "killed=$pids"`
}

export function wreckScript(dataDir: string): Script {
  return sh`D=${dataDir}
rm -rf "$D/member/wal"
if [ -f "$D/member/snap/db" ]; then dd if=/dev/urandom of="$D/member/snap/db" bs=4096 count=4 conv=notrunc 2>/dev/null; fi
echo "wrecked=$D"`
}

/** Which members a scenario destroys (by index), out of n. */
export function victims(scenario: Scenario, n: number): number[] {
  switch (scenario) {
    case 'total-loss':
      return [...Array(n).keys()]
    case 'quorum-loss':
      // A majority is lost for good; the rest keep running without quorum.
      return [...Array(Math.floor(n / 2) + 1).keys()]
    case 'corrupt-member':
      return [0]
    default:
      return []
  }
}
