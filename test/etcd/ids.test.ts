import { describe, expect, it } from 'vitest'
import { clusterId, hexId, memberId } from '../../lib/etcd/ids.ts'

describe('member and cluster IDs', () => {
  // Read off a real etcd 3.4.23 started with this peer URL and token
  // (`etcdctl endpoint status -w json`); the e2e tests check multi-member clusters.
  it('matches what etcd computed for a one-member cluster', () => {
    const m = memberId(['http://127.0.0.1:12380'], 'tok')
    expect(m).toBe(15429915573580438332n)
    expect(hexId(m)).toBe('d622127685879b3c')
    expect(clusterId([m])).toBe(7374361507836364162n)
  })

  it('does not depend on member order, and does on the token', () => {
    const a = memberId(['http://10.0.0.1:2380'], 't')
    const b = memberId(['http://10.0.0.2:2380'], 't')
    expect(clusterId([a, b])).toBe(clusterId([b, a]))
    expect(memberId(['http://10.0.0.1:2380'], 'u')).not.toBe(a)
  })
})
