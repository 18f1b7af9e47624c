// The lab's network: a bridge in the root namespace holding the gateway address,
// and per host a network namespace joined to it by a veth pair (eth0 inside).
// Hosts reach each other and the machine's bridge address, and nothing beyond:
// the bridge does not forward (see configureBridge).
import { writeFileSync } from 'node:fs'
import { run } from './exec.ts'
import { parseIpAddrJson, type AddressInUse } from './subnet.ts'

export async function machineAddresses(): Promise<AddressInUse[]> {
  const { stdout } = await run(['ip', '-4', '-j', 'addr', 'show'])
  return parseIpAddrJson(stdout)
}

export async function netnsList(): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'netns', 'list'])
  const list = JSON.parse(stdout.trim() || '[]') as Array<{ name: string }>
  return list.map((n) => n.name)
}

export async function linkList(): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'link', 'show'])
  return (JSON.parse(stdout.trim() || '[]') as Array<{ ifname: string }>).map((l) => l.ifname)
}

export async function addBridge(name: string): Promise<void> {
  await run(['ip', 'link', 'add', name, 'type', 'bridge'])
}

export async function configureBridge(name: string, gateway: string): Promise<void> {
  // Hosts have a default route via the bridge, like real machines. Packets they send
  // beyond the lab must still never leave the machine, even where it forwards
  // (Docker turns ip_forward on): IPv4 forwarding off for what arrives on this bridge.
  writeFileSync(`/proc/sys/net/ipv4/conf/${name}/forwarding`, '0')
  await run(['ip', 'addr', 'add', `${gateway}/24`, 'dev', name])
  await run(['ip', 'link', 'set', name, 'up'])
}

/** A veth pair: `veth` in the root namespace, its peer eth0 in `netns`. */
export async function addVeth(veth: string, netns: string): Promise<void> {
  await run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns])
}

/** Plug the veth into the bridge; give eth0 the host's address and a default route via the bridge. */
export async function configureHostNetwork(opts: {
  netns: string
  veth: string
  bridge: string
  address: string
  gateway: string
}): Promise<void> {
  const { netns, veth } = opts
  await run(['ip', 'link', 'set', veth, 'master', opts.bridge, 'up'])
  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
  await run(['ip', '-n', netns, 'addr', 'add', `${opts.address}/24`, 'dev', 'eth0'])
  await run(['ip', '-n', netns, 'link', 'set', 'eth0', 'up'])
  await run(['ip', '-n', netns, 'route', 'add', 'default', 'via', opts.gateway])
}

export async function addNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name])
}

/** Delete a namespace if it exists (deleting it also deletes its veth pair). */
export async function deleteNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'del', name], { allowFailure: true })
}

/** Delete a link if it exists. */
export async function deleteLink(name: string): Promise<void> {
  await run(['ip', 'link', 'del', name], { allowFailure: true })
}
