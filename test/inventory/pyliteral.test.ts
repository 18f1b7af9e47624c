import { describe, expect, it } from 'vitest'
import { parsePythonLiteral } from '../../lib/inventory/pyliteral.ts'

// Expected values were checked against Python's ast.literal_eval (then json.dumps, as
// ansible-inventory prints). `undefined` means "not a literal": Ansible keeps the text.
describe('parsePythonLiteral (ast.literal_eval)', () => {
  it.each<[string, unknown]>([
    ['3', 3], ['-5', -5], ['+5', 5], ['0x1F', 31], ['0o17', 15], ['0b11', 3], ['1_000', 1000], ['00', 0],
    ['1.5', 1.5], ['1.', 1], ['.5', 0.5], ['1e3', 1000], ['5.e3', 5000], ['007.5', 7.5], ['-(1)', -1],
    ['True', true], ['False', false], ['None', null],
    ["'a'", 'a'], ['"a"', 'a'], ["'''a'''", 'a'], ["'a' 'b'", 'ab'], ["u'x'", 'x'], ["b'xy'", 'xy'],
    ["r'a\\nb'", 'a\\nb'], ["'a\\nb'", 'a\nb'], ["'\\x41\\101'", 'AA'], ["'\\d'", '\\d'], ["b'\\xc3\\xa9'", 'é'],
    ['[1, 2]', [1, 2]], ['[1,2,]', [1, 2]], ['[]', []], ['(1,)', [1]], ['()', []], ['(1)', 1],
    ['1,2', [1, 2]], ['1,', [1]],
    ["{'a': [1, (2, 3)]}", { a: [1, [2, 3]] }], ['{}', {}], ["{'a':1,}", { a: 1 }],
    ['{True: 1, None: 2, 1.5: 3}', { true: 1, null: 2, '1.5': 3 }],
    ['1 # a comment', 1], ['  1', 1],
  ])('%s', (text, value) => {
    expect(parsePythonLiteral(text)).toEqual(value)
  })

  it.each([
    'true', 'false', 'none', 'yes', 'x', '007', '1__0', '1e', '0xg', '1.5.2', '--1', "-'a'", '1 2', '1j',
    "f'x'", "bu'x'", '[1, # x', '', '# c', '{[1]: 2}', 'a b', '1if', 'é', '"unterminated',
  ])('%s is not a literal', (text) => {
    expect(parsePythonLiteral(text)).toBeUndefined()
  })

  it('turns sets into lists (JSON has no sets)', () => {
    expect(parsePythonLiteral('{1, 2}')).toEqual([1, 2])
  })
})
