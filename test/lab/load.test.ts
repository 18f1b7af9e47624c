import { describe, expect, it } from 'vitest'
import { loadKey, loadValue, sha256Hex } from '../../lib/lab/load.ts'

describe('loadValue', () => {
  it('is a pure function of seed and index', () => {
    expect(loadValue('s', 7).equals(loadValue('s', 7))).toBe(true)
    expect(loadValue('s', 7).equals(loadValue('t', 7))).toBe(false)
    expect(sha256Hex(loadValue('etcd-rescue', 1))).toBe(sha256Hex(loadValue('etcd-rescue', 1)))
  })

  it('varies sizes from a few bytes to hundreds of KiB, within etcd\'s request limit', () => {
    const sizes = Array.from({ length: 2000 }, (_, k) => loadValue('sizes', k + 1).length)
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(16)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(512 * 1024)
    expect(sizes.filter((s) => s <= 1024).length).toBeGreaterThan(1000)
    expect(sizes.filter((s) => s > 16 * 1024).length).toBeGreaterThan(0)
  })
})

describe('loadKey', () => {
  it('zero-pads so keys sort in index order', () => {
    expect(loadKey('/p/', 42)).toBe('/p/0000042')
    expect([loadKey('/p/', 10), loadKey('/p/', 9)].sort()).toEqual([loadKey('/p/', 9), loadKey('/p/', 10)])
  })
})
