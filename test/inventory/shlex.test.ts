import { describe, expect, it } from 'vitest'
import { ShlexError, shlexSplit } from '../../lib/inventory/shlex.ts'

// Expected values were produced by Python's shlex.split(line, comments=True).
describe('shlexSplit (Python shlex, posix, comments=True)', () => {
  it.each([
    ['a b\tc', ['a', 'b', 'c']],
    ['h x="a b" y=\'c d\'', ['h', 'x=a b', 'y=c d']],
    ['h # comment', ['h']],
    ['h#comment x=1', ['h']], // `#` ends the line even inside a word
    ['x=a#b y="c#d"', ['x=a']],
    ['x="c#d"', ['x=c#d']], // but not inside quotes
    ['esc=a\\ b', ['esc=a b']],
    ['"a\\"b"', ['a"b']], // in double quotes \ escapes " and \ only
    ['"a\\b"', ['a\\b']],
    ["'a\\b'", ['a\\b']], // nothing is special in single quotes
    ['x="" y', ['x=', 'y']],
    ['""', ['']],
    ['  ', []],
    ['h ;c', ['h', ';c']], // `;` is not a comment here
  ])('%s', (line, tokens) => {
    expect(shlexSplit(line)).toEqual(tokens)
  })

  it('keeps # when comments are off (ssh args)', () => {
    expect(shlexSplit('-o ProxyCommand=a#b', { comments: false })).toEqual(['-o', 'ProxyCommand=a#b'])
  })

  it.each([
    ['x="open', 'No closing quotation'],
    ['x\\', 'No escaped character'],
  ])('%s fails like Python: %s', (line, message) => {
    expect(() => shlexSplit(line)).toThrow(ShlexError)
    expect(() => shlexSplit(line)).toThrow(message)
  })
})
