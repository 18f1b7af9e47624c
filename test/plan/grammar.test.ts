import { describe, expect, it } from 'vitest'
import { HostDataError, TOKEN_RE, isSafeAbsolutePath, parseStateFile, parseStateLine } from '../../lib/plan/grammar.ts'
import { parseFacts } from '../../lib/plan/facts.ts'
import { ExitCode } from '../../lib/errors.ts'

const SHA = 'ab'.repeat(32)
const base = ['uid=0', 'hostname=h1', 'bin.etcd=/usr/bin/etcd', 'bin.etcdctl=/usr/bin/etcdctl', 'version.etcd=etcd Version: 3.4.23', 'pids=']

describe('state file lines', () => {
  it('parses what restoreScript and completeScript write', () => {
    expect(parseStateLine('aside /var/lib/etcd.etcd-rescue-old-20260101T000000Z')).toEqual({ kind: 'aside', path: '/var/lib/etcd.etcd-rescue-old-20260101T000000Z' })
    expect(parseStateLine(`restored ${SHA} etcd-rescue-20260101t000000z-abc123`)).toEqual({ kind: 'restored', sha256: SHA, token: 'etcd-rescue-20260101t000000z-abc123' })
    expect(parseStateFile([`restored ${SHA} t1`, `complete ${SHA} t1`], 'h', 'f').restored).toBeUndefined()
    expect(parseStateFile([`complete ${SHA} t1`, 'aside /x', `restored ${SHA} t2`, `verified ${SHA} 5:12:1795622157.308477680`], 'h', 'f').restored).toEqual({ sha256: SHA, token: 't2' })
  })

  for (const bad of [
    `restored ${SHA} $(touch /tmp/pwned)`, `restored ${SHA} ../../etc`, `restored ${SHA} -rf`, `restored nothex t1`,
    `restored ${SHA} t1 extra`, 'aside relative/path', `verified ${SHA} 5;id`, 'aside /a/../b', 'aside /a\tb', 'garbage', `restored ${SHA} 'q'`,
  ]) {
    it(`refuses ${JSON.stringify(bad)} naming host, file and line`, () => {
      const err = (() => {
        try {
          parseStateFile(['aside /ok', bad], 'etcd2', '/var/lib/.etcd-rescue-etcd/state')
        } catch (e) {
          return e
        }
      })() as HostDataError
      expect(err).toBeInstanceOf(HostDataError)
      expect(err.exitCode).toBe(ExitCode.PREFLIGHT)
      expect(err.where).toBe('etcd2')
      expect(err.message).toContain('/var/lib/.etcd-rescue-etcd/state line 2')
    })
  }
})

describe('probe output', () => {
  it('accepts a plain report and reads the state file through the grammar', () => {
    const f = parseFacts([...base, `state.line=restored ${SHA} tok-1`, 'pids=12 345'].join('\n'), 'etcd1', 'S')
    expect(f.restored).toEqual({ sha256: SHA, token: 'tok-1' })
    expect(f.pids).toEqual([12, 345])
  })

  for (const [field, value] of [
    ['pids', '12 $(id)'], ['pids', '1'], ['bin.etcd', 'etcd'], ['bin.etcdctl', '/usr/bin/../../tmp/x'], ['snap.sha', 'zz'],
    ['data.entries', '3; id'], ['parent.free_kib', '-1'], ['parent.free_kib', '8.5e+10'], ['state.line', 'restored x y'],
  ]) {
    it(`refuses ${field}=${value}`, () => {
      expect(() => parseFacts([...base, `${field}=${value}`].join('\n'), 'etcd3')).toThrow(HostDataError)
    })
  }

  it('refuses a probe that did not finish', () => {
    expect(() => parseFacts('hostname=x', 'etcd1')).toThrow(/uid/)
  })
})

describe('tokens and paths', () => {
  it('tokens are plain words', () => {
    expect(TOKEN_RE.test('etcd-rescue-20261125t061500z-a1b2c3')).toBe(true)
    for (const t of ['', '-x', '.x', 'a b', 'a/b', 'x'.repeat(129), "a'b"]) expect(TOKEN_RE.test(t)).toBe(false)
  })
  it('paths are absolute with no control characters or ..', () => {
    expect(isSafeAbsolutePath('/var/lib/etcd data')).toBe(true)
    for (const p of ['var/lib', '/a/../b', '/a\nb', '']) expect(isSafeAbsolutePath(p)).toBe(false)
  })
})
