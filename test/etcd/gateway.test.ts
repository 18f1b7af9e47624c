import { afterEach, describe, expect, it, vi } from 'vitest'
import { PassThrough } from 'node:stream'
import { Gateway, TLS_RETRY_MS } from '../../lib/etcd/gateway.ts'

describe('Gateway over https: the TLS files', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('reads them before connecting, does not keep a failed read, and does not read again before TLS_RETRY_MS', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    let reads = 0
    let connects = 0
    const gw = new Gateway('https://10.0.0.1:2379', async () => {
      connects++
      return new PassThrough()
    }, async () => {
      reads++
      throw new Error('cannot read the TLS files /etc/ssl/etcd/ssl/ca.pem: timed out')
    })
    await expect(gw.health(1000)).rejects.toThrow('cannot read the TLS files')
    await expect(gw.health(1000)).rejects.toThrow('cannot read the TLS files')
    expect({ reads, connects }).toEqual({ reads: 1, connects: 0 })
    vi.setSystemTime(Date.now() + TLS_RETRY_MS)
    await expect(gw.health(1000)).rejects.toThrow('cannot read the TLS files')
    expect({ reads, connects }).toEqual({ reads: 2, connects: 0 })
  })
})
