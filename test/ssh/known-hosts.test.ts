import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KnownHosts, blobType, fingerprint, lookupName } from '../../lib/ssh/known-hosts.ts'

// Real keys and real `ssh-keygen -H` hashing, so the format is OpenSSH's, not ours.
function makeKey(dir: string, name: string): { line: string; blob: Buffer } {
  const path = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path])
  const [type, b64] = readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/)
  return { line: `${type} ${b64}`, blob: Buffer.from(b64, 'base64') }
}

describe('known_hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kh-'))
  const a = makeKey(dir, 'a')
  const b = makeKey(dir, 'b')

  it('names non-22 ports in brackets', () => {
    expect(lookupName('10.0.0.1', 22)).toBe('10.0.0.1')
    expect(lookupName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222')
  })

  it('matches plain, comma-separated and bracketed entries', () => {
    const kh = KnownHosts.parse(`# comment\nhost1,10.0.0.1 ${a.line}\n[10.0.0.2]:2222 ${b.line}\n`)
    expect(kh.check('host1', 22, a.blob)).toBe('ok')
    expect(kh.check('10.0.0.1', 22, a.blob)).toBe('ok')
    expect(kh.check('10.0.0.1', 22, b.blob)).toBe('mismatch')
    expect(kh.check('10.0.0.2', 2222, b.blob)).toBe('ok')
    expect(kh.check('10.0.0.2', 22, b.blob)).toBe('unknown')
    expect(kh.check('nowhere', 22, a.blob)).toBe('unknown')
  })

  it('matches entries hashed by ssh-keygen -H', () => {
    const file = join(dir, 'known_hosts')
    writeFileSync(file, `10.0.0.9 ${a.line}\n[10.0.0.9]:2200 ${b.line}\n`)
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' })
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^\|1\|/)
    expect(text).not.toContain('10.0.0.9')
    const kh = KnownHosts.load([file, join(dir, 'missing')])
    expect(kh.check('10.0.0.9', 22, a.blob)).toBe('ok')
    expect(kh.check('10.0.0.9', 2200, b.blob)).toBe('ok')
    expect(kh.check('10.0.0.9', 22, b.blob)).toBe('mismatch')
  })

  it('honours wildcards, negation and @revoked', () => {
    const kh = KnownHosts.parse(`*.lab,!bad.lab ${a.line}\n@revoked * ${b.line}\n@cert-authority *.x ${a.line}\n`)
    expect(kh.check('h1.lab', 22, a.blob)).toBe('ok')
    expect(kh.check('bad.lab', 22, a.blob)).toBe('unknown')
    expect(kh.check('h1.lab', 22, b.blob)).toBe('revoked')
  })

  it('prints fingerprints like ssh-keygen -l', () => {
    const out = execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'a.pub')]).toString()
    expect(out).toContain(fingerprint(a.blob))
    expect(blobType(a.blob)).toBe('ssh-ed25519')
  })
})
