import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readTlsFiles, tlsFor } from '../../lib/etcd/tls.ts'
import type { Script } from '../../lib/shell/sh.ts'

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

describe('readTlsFiles', () => {
  /** Runs the script with this machine's sh, as a host would, counting the commands. */
  const localHost = () => {
    const host = {
      commands: 0,
      async exec(script: Script) {
        host.commands++
        const r = spawnSync('sh', ['-c', script.text], { encoding: 'utf8' })
        return { code: r.status, stdout: r.stdout, stderr: r.stderr }
      },
    }
    return host
  }

  it('reads the CA, certificate and key in one command, byte for byte', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-read-'))
    const bundle = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n'
    const key = Buffer.concat([Buffer.from('-----BEGIN PRIVATE KEY-----\n'), randomBytes(3000), Buffer.from('\n.\n')])
    writeFileSync(join(dir, 'ca.pem'), bundle)
    writeFileSync(join(dir, 'admin.pem'), '')
    writeFileSync(join(dir, "admin key 'x'.pem"), key)
    const host = localHost()
    const got = await readTlsFiles(host, { cacert: join(dir, 'ca.pem'), cert: join(dir, 'admin.pem'), key: join(dir, "admin key 'x'.pem") })
    expect(host.commands).toBe(1)
    expect(got.ca?.toString()).toBe(bundle)
    expect(got.cert?.length).toBe(0)
    expect(got.key?.equals(key)).toBe(true)
    expect(await readTlsFiles(host, { cacert: join(dir, 'ca.pem') })).toEqual({ ca: Buffer.from(bundle) })
  })

  it('fails naming the files, never their contents, when one cannot be read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-read-'))
    writeFileSync(join(dir, 'ca.pem'), 'SECRET-CA-CONTENT')
    const err = await readTlsFiles(localHost(), { cacert: join(dir, 'ca.pem'), key: join(dir, 'missing-key.pem') }).catch((e: Error) => e)
    expect(String(err)).toContain('missing-key.pem')
    expect(String(err)).not.toContain('SECRET')
    expect(String(err)).not.toContain(Buffer.from('SECRET-CA-CONTENT').toString('base64'))
  })
})
