import { describe, expect, it } from 'vitest'
import { expandHostPattern, HostPatternError, parseAddress } from '../../lib/inventory/hostpattern.ts'

describe('expandHostPattern', () => {
  it.each<[string, string[], number?]>([
    ['node1', ['node1']],
    ['node1:2222', ['node1'], 2222],
    ['node[1:3]', ['node1', 'node2', 'node3']],
    ['node[01:03]', ['node01', 'node02', 'node03']], // zero-padded to the width of begin
    ['node[0:10:5]', ['node0', 'node5', 'node10']], // step
    ['r[001:010:5]', ['r001', 'r006']],
    ['x[a:c]', ['xa', 'xb', 'xc']],
    ['q[a:C:20]', ['qa', 'qu']], // letters run a..z then A..Z
    ['db-[a:b]-[1:2]', ['db-a-1', 'db-a-2', 'db-b-1', 'db-b-2']],
    ['[:2]-x', ['0-x', '1-x', '2-x']], // an empty begin is 0
    ['www[1:2].example.com:8022', ['www1.example.com', 'www2.example.com'], 8022],
    ['10.0.[0:1].9', ['10.0.0.9', '10.0.1.9']],
    ['fe80::1', ['fe80::1']], // IPv6 without brackets has no port
    ['[2001:db8::10]:2200', ['2001:db8::10'], 2200],
    ['weird$h:22', ['weird$h:22']], // not an address: Ansible keeps it whole, port and all
  ])('%s', (pattern, hosts, port) => {
    expect(expandHostPattern(pattern)).toEqual({ hosts, port })
  })

  it.each([
    ['node[1:2', 'unclosed range'],
    ['node[3:1]', 'is empty'],
    ['node[1]', 'begin:end'],
    ['node[1:]', 'end value'],
    ['node[01:100]', 'equal-length'],
    ['node[a:1]', 'not a number'],
    ['node[c:a]', 'begin <= end'],
    ['node[1:3:0]', 'positive step'],
  ])('%s is refused (%s)', (pattern, message) => {
    expect(() => expandHostPattern(pattern)).toThrow(HostPatternError)
    expect(() => expandHostPattern(pattern)).toThrow(message)
  })

  it('parses addresses like Ansible', () => {
    expect(parseAddress('host.example.com')).toEqual({ host: 'host.example.com', port: undefined })
    expect(parseAddress('192.0.2.1:22')).toEqual({ host: '192.0.2.1', port: 22 })
    expect(parseAddress('-bad')).toBeUndefined()
  })
})
