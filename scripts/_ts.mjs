// Lets the zx entry points load lib/*.ts with no build step: tsx registers a
// TypeScript loader, after which dynamic import() of .ts files works. Static
// imports of .ts would be linked before this runs, so entry points use
// `const m = await loadLib('cli/recover.ts')`.
import { register } from 'tsx/esm/api'

register()

export function loadLib(path) {
  return import(new URL(`../lib/${path}`, import.meta.url).href)
}

/** The arguments after the script's own path, whether run by zx or node. */
export function scriptArgs(scriptUrl) {
  const name = new URL(scriptUrl).pathname.split('/').pop()
  const i = process.argv.findIndex((a) => a.endsWith(name))
  return process.argv.slice(i + 1)
}
