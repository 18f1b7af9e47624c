// Which /24 a lab uses: 198.18.K.0/24 (RFC 2544 benchmarking range, never routed
// on the internet), the first K in 1..254 that no address on the machine and no
// other lab's state already covers. The bridge holds .1, host i holds .(10+i).

export interface Subnet {
  /** Third octet: 198.18.K.0/24. */
  k: number
  /** 198.18.K.1, the bridge's address in the root namespace and the hosts' gateway. */
  gateway: string
  cidr: string
}

export function subnet(k: number): Subnet {
  return { k, gateway: `198.18.${k}.1`, cidr: `198.18.${k}.0/24` }
}

export function hostAddress(k: number, i: number): string {
  return `198.18.${k}.${10 + i}`
}

/** An address with its prefix length, as `ip -j addr` reports it. */
export interface AddressInUse {
  address: string
  prefixlen: number
}

function toInt(ipv4: string): number | undefined {
  const parts = ipv4.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
}

/** Does the network of `a` overlap 198.18.K.0/24? (Either may contain the other.) */
export function overlapsK(a: AddressInUse, k: number): boolean {
  const ip = toInt(a.address)
  if (ip === undefined) return false
  const bits = Math.min(a.prefixlen, 24)
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  const candidate = toInt(`198.18.${k}.0`)!
  return ((ip & mask) >>> 0) === ((candidate & mask) >>> 0)
}

/**
 * First free K, or undefined when all 254 are taken.
 * @param addresses every IPv4 address on the machine (root namespace)
 * @param labKs the K of every other lab whose state exists
 */
export function chooseSubnet(addresses: readonly AddressInUse[], labKs: readonly number[]): Subnet | undefined {
  for (let k = 1; k <= 254; k++) {
    if (labKs.includes(k)) continue
    if (addresses.some((a) => overlapsK(a, k))) continue
    return subnet(k)
  }
  return undefined
}

/** Parse `ip -4 -j addr show` output. */
export function parseIpAddrJson(json: string): AddressInUse[] {
  const links = JSON.parse(json || '[]') as Array<{ addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }> }>
  return links.flatMap((l) =>
    (l.addr_info ?? [])
      .filter((a) => a.family === 'inet' && a.local)
      .map((a) => ({ address: a.local!, prefixlen: a.prefixlen ?? 32 })),
  )
}
