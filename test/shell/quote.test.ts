import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { quote, shellCommand } from '../../lib/shell/quote.ts'

const nasty = [
  '', 'plain', 'with space', "it's", '$(touch /tmp/pwned)', '`id`', 'a;b', 'a&&b', '"dq"',
  'new\nline', 'tab\there', '*', '~root', 'back\\slash', "'", "''", '-n', 'é ünïcode', '#hash',
]

describe('quote', () => {
  it('leaves safe words alone', () => {
    expect(quote('etcd-1')).toBe('etcd-1')
    expect(quote('http://198.18.0.10:2380')).toBe('http://198.18.0.10:2380')
    expect(quote(3)).toBe('3')
  })

  it('quotes the empty string and metacharacters', () => {
    expect(quote('')).toBe("''")
    expect(quote("it's")).toBe(`'it'\\''s'`)
  })

  it('refuses NUL', () => {
    expect(() => quote('a\0b')).toThrow(TypeError)
  })

  // The property that matters: dash (Debian's /bin/sh) reads every argument back unchanged.
  for (const shell of ['/bin/sh', '/bin/bash']) {
    it(`round-trips through ${shell}`, () => {
      const script = `for a in ${nasty.map(quote).join(' ')}; do printf '%s\\0' "$a"; done`
      const out = execFileSync(shell, ['-c', script]).toString('utf8')
      expect(out.split('\0').slice(0, -1)).toEqual(nasty)
    })
  }
})

describe('shellCommand', () => {
  it('joins quoted argv', () => {
    expect(shellCommand(['mv', 'a b', '/x'])).toBe("mv 'a b' /x")
  })
  it('refuses an empty argv', () => {
    expect(() => shellCommand([])).toThrow(TypeError)
  })
})
