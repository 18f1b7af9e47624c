import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { linkCommands, loginSnippet, parseRate } from '../../lib/lab/shape.ts'

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

  it('the link is shaped on the operator side of the bridge only, both ways', () => {
    const { clear, apply } = linkCommands('er-x', 'er-x-in', '100mbit')
    // operator→hosts: tbf on the bridge device; hosts→operator: the bridge's ingress redirected to the ifb, tbf there
    expect(apply.map((c) => c.join(' '))).toEqual([
      'tc qdisc add dev er-x root tbf rate 100mbit burst 256kb latency 50ms',
      'ip link add er-x-in type ifb',
      'ip link set er-x-in up',
      'tc qdisc add dev er-x-in root tbf rate 100mbit burst 256kb latency 50ms',
      'tc qdisc add dev er-x handle ffff: ingress',
      'tc filter add dev er-x parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev er-x-in',
    ])
    // no host veth is touched: host-to-host traffic between bridge ports is not shaped
    expect(apply.flat().some((a) => /-h\d/.test(a))).toBe(false)
    expect(linkCommands('er-x', 'er-x-in', undefined).apply).toEqual([])
    expect(clear.map((c) => c.join(' '))).toContain('ip link del er-x-in')
  })
})
