// Flag parsing shared by the entry points: strict (an unknown or misspelt flag
// is an error, exit 2, never silently ignored) and typed.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { InputError } from '../errors.ts'

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true })
  } catch (err) {
    throw new InputError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), { hint: `See ${usage} --help.` })
  }
}

/** A whole number within bounds, or an InputError naming the flag. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InputError(`--${name} must be a whole number from ${min} to ${max}, not "${value}"`)
  }
  return Number(value)
}

/** Seconds as given on the command line ("120", "90s", "2m") to milliseconds. */
export function durationFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(value)
  if (!m || Number(m[1]) <= 0) throw new InputError(`--${name} takes seconds ("120", "90s" or "2m"), not "${value}"`)
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : 1000)
}
