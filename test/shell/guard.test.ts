// The rule "no value becomes shell text except through sh" is kept by types
// (remote commands take a Script) and by this scan: nothing in lib/ may reach
// the quoting function directly, and the places that vouch for raw script text
// with trusted() are few and named here, so a new one is a reviewed change.
import { describe, expect, it } from 'vitest'
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const LIB = new URL('../../lib', import.meta.url).pathname

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

const files = sources(LIB).map((f) => ({ path: relative(LIB, f), text: readFileSync(f, 'utf8') }))

/** Files allowed to call trusted(): each says why at the call. */
const TRUSTED_ALLOWED = new Set<string>([])

describe('shell text is built only through sh', () => {
  it('nothing outside lib/shell imports the quoting function', () => {
    const offenders = files.filter((f) => !f.path.startsWith('shell/') && /shell\/quote(\.ts)?['"]/.test(f.text))
    expect(offenders.map((f) => f.path)).toEqual([])
  })

  it('trusted() is called only where allowed', () => {
    const callers = files.filter((f) => !f.path.startsWith('shell/') && /\btrusted\(/.test(f.text)).map((f) => f.path)
    expect(callers.filter((p) => !TRUSTED_ALLOWED.has(p))).toEqual([])
  })

  it('no child process is given a shell line', () => {
    // Local commands are argv arrays (spawn/execFile without shell: true).
    const offenders = files.filter((f) => /shell:\s*true|\bexecSync\(|child_process'.*\bexec\b/.test(f.text))
    expect(offenders.map((f) => f.path)).toEqual([])
  })

  it('the scan sees the tree', () => {
    expect(files.length).toBeGreaterThan(50)
    expect(files.some((f) => f.path === 'plan/scripts.ts' && f.text.includes('sh`'))).toBe(true)
  })
})
