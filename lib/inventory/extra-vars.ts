// `-e` / `--extra-vars`, as ansible-playbook reads them: `key=value` pairs (split like a
// shell line; values stay strings), a JSON or YAML mapping (`-e '{"a": 1}'`), or
// `@FILE` (YAML or JSON). Several -e merge, a later one winning; together they beat
// every inventory variable.
import { readFileSync } from 'node:fs'
import { InputError } from '../errors.ts'
import { newVars, type Vars } from './model.ts'
import { shlexSplit } from './shlex.ts'
import { loadYamlOrJson } from './yaml-values.ts'

export function parseExtraVars(args: readonly string[], warnings: string[] = []): Vars {
  const vars = newVars()
  for (const arg of args) {
    if (arg.startsWith('@')) {
      const file = arg.slice(1)
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (e) {
        throw new InputError(`-e ${arg}: cannot read ${file}: ${(e as Error).message}`)
      }
      Object.assign(vars, mapping(loadYamlOrJson(text, file, warnings).value, `-e ${arg}`))
    } else if (/^\s*[{[]/.test(arg)) {
      Object.assign(vars, mapping(loadYamlOrJson(arg, '-e', warnings).value, `-e ${arg}`))
    } else {
      let words: string[]
      try {
        words = shlexSplit(arg, { comments: false })
      } catch (e) {
        throw new InputError(`-e ${arg}: ${(e as Error).message}`)
      }
      for (const w of words) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(w)
        if (!m) throw new InputError(`-e takes key=value, @FILE or a JSON/YAML mapping; cannot read '${w}'`)
        vars[m[1]] = m[2]
      }
    }
  }
  return vars
}

function mapping(value: unknown, what: string): Vars {
  if (value === null || value === undefined || value === '') return newVars()
  if (typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${what}: expected a mapping of variable names to values`)
  return value as Vars
}
