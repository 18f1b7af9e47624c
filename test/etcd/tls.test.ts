import { describe, expect, it } from 'vitest'
import { tlsFor } from '../../lib/etcd/tls.ts'

describe('tlsFor', () => {
  it('uses no certificates for plain http', () => {
    expect(tlsFor({ inventoryHost: 'n1', clientUrl: 'http://10.0.0.1:2379', vars: {} })).toBeUndefined()
  })

  it("follows kubespray's layout for https, per host", () => {
    expect(tlsFor({ inventoryHost: 'node1', clientUrl: 'https://10.0.0.1:2379', vars: {} })).toEqual({
      cacert: '/etc/ssl/etcd/ssl/ca.pem', cert: '/etc/ssl/etcd/ssl/admin-node1.pem', key: '/etc/ssl/etcd/ssl/admin-node1-key.pem',
    })
    expect(tlsFor({ inventoryHost: 'node2', clientUrl: 'https://x:2379', vars: { etcd_cert_dir: '/pki' } })?.cert).toBe('/pki/admin-node2.pem')
  })

  it('lets explicit files win', () => {
    expect(tlsFor({ inventoryHost: 'n', clientUrl: 'https://x:2379', vars: { etcd_ca_file: '/a/ca.crt', etcd_cert_file: '/a/c.crt', etcd_key_file: '/a/c.key' } }))
      .toEqual({ cacert: '/a/ca.crt', cert: '/a/c.crt', key: '/a/c.key' })
  })
})
