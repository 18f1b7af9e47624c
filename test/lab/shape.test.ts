import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { loginSnippet, parseRate } from '../../lib/lab/shape.ts'

describe('lab shape', () => {
  it('login snippets are valid bash and fast adds nothing', () => {
    expect(loginSnippet('fast')).toBe('')
    for (const k of ['slow', 'busy'] as const) {
      const text = loginSnippet(k)
      expect(text).toMatch(/^# >>> etcd-rescue lab login cost >>>\n[\s\S]*\n# <<< etcd-rescue lab login cost <<<\n$/)
      expect(() => execFileSync('bash', ['-n', '-c', text])).not.toThrow()
    }
    expect(loginSnippet('slow')).toContain('sleep 0.5')
  })

  it('link rates are tc rates or none', () => {
    expect(parseRate('100mbit')).toBe('100mbit')
    expect(parseRate('none')).toBeUndefined()
    for (const bad of ['100', '100 mbit', 'fast', '1tbit', '-1mbit']) expect(() => parseRate(bad)).toThrow(/--link/)
  })
})
