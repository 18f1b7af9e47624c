// What copyAgain gives up on at once, before any connection: failures no retry can mend.
import { describe, expect, it } from 'vitest'
import { copyAgain } from '../../lib/recover/copy-retry.ts'

describe('copyAgain', () => {
  const m = { name: 'etcd2', paths: { work: '/var/lib/.etcd-rescue-etcd' } } as never
  const tries = () => {
    const said: string[] = []
    // No pool, no connection: a retry would fail on them, and must not be reached.
    const o = { retries: 2, size: 1, sha256: 'a'.repeat(64), connect: {}, say: (t: string) => said.push(t), onProgress: () => {}, relock: async () => {} } as never
    return { said, o }
  }

  it('does not retry a copy whose snapshot changed on this machine, and says so with what to do', async () => {
    const { said, o } = tries()
    const first = new Error('the snapshot /b/s.db changed on this machine during the copy (5 bytes, sha256 00; checked at the start: 4 bytes, 11): its copies were stopped before their end')
    const err = await copyAgain(first, m, '/b/s.db', undefined as never, o).catch((e: Error & { hint?: string; where?: string }) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/^copy failed, not retried: the snapshot \/b\/s.db changed on this machine during the copy/)
    expect((err as { hint?: string }).hint).toMatch(/Put the snapshot back \(or take a new one\) and run again/)
    expect(said).toEqual([])
  })

  it('does not retry a full disk either', async () => {
    const { said, o } = tries()
    const err = await copyAgain(Object.assign(new Error('upload failed'), { stderr: 'No space left on device for the snapshot' }), m, '/b/s.db', undefined as never, o).catch((e: Error) => e)
    expect((err as Error).message).toMatch(/not retried: no space left on device/)
    expect(said).toEqual([])
  })
})
