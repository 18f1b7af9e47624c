import { describe, expect, it } from 'vitest'
import { chooseSubnet, hostAddress, overlapsK, parseIpAddrJson } from '../../lib/lab/subnet.ts'

describe('chooseSubnet', () => {
  it('takes 198.18.1.0/24 on a machine with no 198.18 address and no other lab', () => {
    expect(chooseSubnet([{ address: '192.0.2.2', prefixlen: 24 }, { address: '127.0.0.1', prefixlen: 8 }], []))
      .toEqual({ k: 1, gateway: '198.18.1.1', cidr: '198.18.1.0/24' })
  })

  it('skips /24s holding a machine address and /24s recorded by other labs', () => {
    const used = [{ address: '198.18.1.1', prefixlen: 24 }, { address: '198.18.3.7', prefixlen: 32 }]
    expect(chooseSubnet(used, [2, 4])?.k).toBe(5)
  })

  it('treats a wider network covering 198.18.K as using it', () => {
    expect(chooseSubnet([{ address: '198.18.0.1', prefixlen: 22 }], [])?.k).toBe(4)
    expect(chooseSubnet([{ address: '198.19.0.1', prefixlen: 15 }], [])).toBeUndefined()
  })

  it('returns undefined when all 254 are taken', () => {
    expect(chooseSubnet([], Array.from({ length: 254 }, (_, k) => k + 1))).toBeUndefined()
  })

  it('places host i at .(10+i)', () => {
    expect(hostAddress(7, 3)).toBe('198.18.7.13')
  })
})

describe('overlapsK', () => {
  it('compares networks, not only addresses', () => {
    expect(overlapsK({ address: '198.18.9.200', prefixlen: 24 }, 9)).toBe(true)
    expect(overlapsK({ address: '198.18.9.200', prefixlen: 24 }, 10)).toBe(false)
    expect(overlapsK({ address: '10.0.0.1', prefixlen: 8 }, 1)).toBe(false)
    expect(overlapsK({ address: '0.0.0.0', prefixlen: 0 }, 1)).toBe(true)
  })
})

describe('parseIpAddrJson', () => {
  it('reads IPv4 addresses with their prefix from `ip -4 -j addr show`', () => {
    const json = JSON.stringify([
      { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
      { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.2', prefixlen: 24 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
      { ifname: 'dummy0' },
    ])
    expect(parseIpAddrJson(json)).toEqual([
      { address: '127.0.0.1', prefixlen: 8 },
      { address: '192.0.2.2', prefixlen: 24 },
    ])
    expect(parseIpAddrJson('')).toEqual([])
  })
})
