import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { sh, trusted, joinScripts, isScript } from '../../lib/shell/sh.ts'

const hostile = [
  '$(echo INJECTED)', '`echo INJECTED`', 'a; echo INJECTED', 'a && echo INJECTED', "'; echo INJECTED; '",
  '"; echo INJECTED; "', 'back\\slash', 'new\necho INJECTED', 'with space', '*', '-rf', '~root', '#x',
]

describe('sh', () => {
  it('quotes every value and keeps script text', () => {
    expect(sh`rm -f ${'a b'} "$X"`.text).toBe(`rm -f 'a b' "$X"`)
    expect(sh`echo ${3}`.text).toBe('echo 3')
    expect(sh`D=${"it's"}`.text).toBe(`D='it'\\''s'`)
  })

  it('spreads arrays as argv', () => {
    expect(sh`${['env', 'A=1', 'my prog']} --x`.text).toBe(`env A=1 'my prog' --x`)
  })

  it('nests Scripts as text', () => {
    const inner = sh`echo ${'x y'}`
    expect(sh`if true; then ${inner}; fi`.text).toBe(`if true; then echo 'x y'; fi`)
    expect(isScript(trusted('a'))).toBe(true)
    expect(joinScripts([sh`a`, sh`b`], ' && ').text).toBe('a && b')
  })

  it('refuses a value inside double quotes, single quotes, backticks or a comment', () => {
    expect(() => sh`echo "copied=${'x'}"`).toThrow(/double quotes/)
    expect(() => sh`echo 'copied=${'x'}'`).toThrow(/single quotes/)
    expect(() => sh`echo \`cat ${'x'}\``).toThrow(/backticks/)
    expect(() => sh`# note ${'x'}`).toThrow(/comment/)
  })

  it('follows $(...) inside double quotes, escapes, case patterns and comments with quotes', () => {
    expect(() => sh`echo "$(grep -E '^(a|b) ' "$J" | tail -n 1)" ${'ok'}`).not.toThrow()
    expect(() => sh`echo "a \\" b" ${'ok'}`).not.toThrow()
    expect(() => sh`case "$x" in etcd) ;; *) exit ;; esac; echo ${'ok'}`).not.toThrow()
    expect(() => sh`# don't do this\necho ${'ok'}`).not.toThrow()
    expect(() => sh`x=$((i + 1)); echo "$(echo ${'in-sub'})"`).not.toThrow()
    expect(() => sh`a#b ${'ok'}`).not.toThrow() // # mid-word is no comment
  })

  it('refuses what cannot be quoted', () => {
    expect(() => sh`echo ${'a\0b'}`).toThrow(TypeError)
    expect(() => sh`echo ${undefined as unknown as string}`).toThrow(TypeError)
  })

  // The property that matters: dash and bash read each hostile value back as one argument.
  for (const shell of ['/bin/dash', '/bin/bash']) {
    it(`runs nothing from a value under ${shell}`, () => {
      const script = sh`for a in ${hostile}; do printf '%s\\0' "$a"; done; V=${hostile[0]}; printf '%s\\0' "$V"`
      const out = execFileSync(shell, ['-c', script.text]).toString('utf8')
      expect(out.split('\0').slice(0, -1)).toEqual([...hostile, hostile[0]])
      expect(out).not.toMatch(/^INJECTED$/m)
    })
  }
})
