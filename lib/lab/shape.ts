// Conditions a real fleet has and the lab does not by default, so recovery time
// can be measured (and tested) under them:
// - login: sshd starts every command through the login user's shell (root's; on a
//   systemd host the sudo user's), and Debian's bash reads ~/.bashrc for commands
//   started by sshd. `slow` puts a 0.5 s sleep
//   at its top (a profile script waiting on a directory service); `busy` puts
//   real CPU work there (what version-manager init hooks cost); `fast` removes ours.
// - link: the operator's link to the hosts limited to a rate, both ways, as one
//   shared pipe (an operator's laptop or a VPN), while the hosts' own network
//   stays fast. The operator is this machine's root namespace, reached through
//   the lab bridge: operator→hosts leaves through the bridge device (tbf there);
//   hosts→operator arrives on it (redirected to an ifb device with tbf, as this
//   kernel has no policer). Host-to-host packets are forwarded between bridge
//   ports and pass through neither, so they stay unshaped. No netem here, so no
//   latency is added.
import { InputError, RescueError } from '../errors.ts'
import { sh } from '../shell/sh.ts'
import { run } from './exec.ts'
import { openLab, type LabRef } from './open.ts'
import { ifbName } from './names.ts'
import { sshExec } from './ssh.ts'

export const LOGINS = ['fast', 'slow', 'busy'] as const
export type Login = (typeof LOGINS)[number]

const BEGIN = '# >>> etcd-rescue lab login cost >>>'
const END = '# <<< etcd-rescue lab login cost <<<'

/** What goes at the top of the login user's ~/.bashrc for each kind of login. */
export function loginSnippet(login: Login): string {
  switch (login) {
    case 'fast':
      return ''
    case 'slow':
      return `${BEGIN}\nsleep 0.5\n${END}\n`
    case 'busy':
      // About 0.3-0.6 s of one core in bash, like pyenv/nvm/conda init hooks.
      return `${BEGIN}\n__er_i=0; while [ $__er_i -lt 150000 ]; do __er_i=$((__er_i + 1)); done; unset __er_i\n${END}\n`
  }
}

/**
 * Sets the login cost on every host of the lab (idempotent: our block is replaced)
 * in the ~/.bashrc of the user SSH logs in as: root, or a systemd host's sudo user
 * (whose file stays its own).
 */
export async function labLogin(lab: LabRef, login: Login): Promise<void> {
  const { state } = openLab(lab)
  const user = state.systemd?.user
  const script = sh`f=${user ? `/home/${user}/.bashrc` : '/root/.bashrc'}; b=${BEGIN}; e=${END}; snippet=${loginSnippet(login)}
touch "$f"
rest=$(awk -v b="$b" -v e="$e" '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' "$f")
{ printf '%s' "$snippet"; printf '%s\\n' "$rest"; } > "$f.etcd-rescue" && mv "$f.etcd-rescue" "$f"${user ? sh` && chown ${`${user}:`} "$f"` : sh``}`
  await Promise.all(state.hosts.map(async (h) => {
    const r = await sshExec(lab, h.index, script)
    if (r.code !== 0) throw new RescueError(`cannot set the login cost: ${r.stderr.trim()}`, { where: h.name })
  }))
}

/** `100mbit`, `1gbit`, `50mbit`…, or `none` to lift the limit. */
export function parseRate(rate: string): string | undefined {
  if (rate === 'none') return undefined
  if (!/^\d{1,6}(kbit|mbit|gbit)$/.test(rate)) throw new InputError(`--link takes a rate like 100mbit or 1gbit, or none (got "${rate}")`)
  return rate
}

/** tc commands that shape (or, with no rate, free) the operator's side of a lab bridge. */
export function linkCommands(bridge: string, ifb: string, rate: string | undefined): { clear: string[][]; apply: string[][] } {
  const clear = [
    ['tc', 'qdisc', 'del', 'dev', bridge, 'root'],
    ['tc', 'qdisc', 'del', 'dev', bridge, 'ingress'],
    ['ip', 'link', 'del', ifb],
  ]
  if (!rate) return { clear, apply: [] }
  const tbf = ['tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms']
  return {
    clear,
    apply: [
      ['tc', 'qdisc', 'add', 'dev', bridge, 'root', ...tbf],
      ['ip', 'link', 'add', ifb, 'type', 'ifb'],
      ['ip', 'link', 'set', ifb, 'up'],
      ['tc', 'qdisc', 'add', 'dev', ifb, 'root', ...tbf],
      ['tc', 'qdisc', 'add', 'dev', bridge, 'handle', 'ffff:', 'ingress'],
      ['tc', 'filter', 'add', 'dev', bridge, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0',
        'action', 'mirred', 'egress', 'redirect', 'dev', ifb],
    ],
  }
}

/** Limits (or, with `none`, frees) the operator's link to the lab's hosts, both directions; host to host stays unshaped. */
export async function labLink(lab: LabRef, rate: string): Promise<void> {
  const { state } = openLab(lab)
  const limit = parseRate(rate)
  if (!state.bridge) throw new RescueError('lab has no recorded bridge', { where: state.name })
  // Earlier versions shaped each host's veth: lift that too.
  for (const h of state.hosts) {
    if (h.veth) await run(['tc', 'qdisc', 'del', 'dev', h.veth, 'root'], { allowFailure: true })
    if (h.netns) await run(['ip', 'netns', 'exec', h.netns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root'], { allowFailure: true })
  }
  const { clear, apply } = linkCommands(state.bridge, ifbName(state.name), limit)
  for (const c of clear) await run(c, { allowFailure: true })
  for (const c of apply) await run(c)
}
