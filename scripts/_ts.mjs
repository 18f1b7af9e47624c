// Lets the zx entry points load lib/*.ts with no build step for the user.
//
// Each start used to load some 75 TypeScript modules through tsx's loader, which
// runs on a thread of its own in Node 20: 0.35 s before anything happened, a
// tenth of a recovery on fast hosts. So the first start after any change to lib/
// bundles lib's entry points with esbuild (the one tsx brings; about 0.1 s) into
// lib/.bundle/<hash>/, and later starts load that (about 0.1 s, node_modules'
// packages included). The hash covers every source file under lib/ and the build
// options, and is computed on every start: a bundle is never stale, it is simply
// not found. Whatever goes wrong (no esbuild, a read-only checkout, a failed
// build) falls back to tsx, as before; ETCD_RESCUE_NO_BUNDLE=1 forces that.
// A bundle is code run as root on the operator's machine: it is loaded only from
// directories owned by the user running it (or root) that no one else can write,
// so another account on that machine cannot plant one (a checkout is as safe as
// its lib/ and node_modules/, no less).
//
// Entry points call `const m = await loadLib('cli/recover.ts')` (a dynamic import:
// static imports of .ts would be linked before tsx could register).
import { createHash } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const LIB = fileURLToPath(new URL('../lib/', import.meta.url))
const BUNDLES = join(LIB, '.bundle')
/** Every module an entry point loads with loadLib. */
export const ENTRIES = ['cli/recover.ts', 'cli/drill.ts', 'cli/bench.ts', 'cli/lab.ts', 'cli/backup.ts', 'cli/inventory.ts']
const OPTIONS = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  outExtension: { '.js': '.mjs' },
  logLevel: 'silent',
}

/** Every .ts under `lib` (not the bundles), by path relative to it. */
function sources(lib, dir = lib, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue
    const p = join(dir, e.name)
    if (e.isDirectory()) sources(lib, p, out)
    else if (e.name.endsWith('.ts')) out.push(p.slice(lib.length))
  }
  return out
}

/** What else shapes the bundle: esbuild's version and the tsconfig it reads. */
function toolchain() {
  const read = (p) => {
    try {
      return readFileSync(fileURLToPath(new URL(p, import.meta.url)), 'utf8')
    } catch {
      return ''
    }
  }
  return `${read('../node_modules/esbuild/package.json')}\0${read('../tsconfig.json')}`
}

/** Names the bundle of exactly these sources, built exactly this way. */
export function libHash(lib = LIB) {
  const h = createHash('sha256')
  h.update(JSON.stringify({ OPTIONS, ENTRIES }))
  h.update(toolchain())
  for (const f of sources(lib).sort()) h.update(`\0${f}\0`).update(readFileSync(join(lib, f)))
  return h.digest('hex').slice(0, 20)
}

/** Owned by this user or root, writable by no one else. */
export function trustedDir(p) {
  const st = statSync(p)
  const uid = process.getuid?.() ?? 0
  return st.isDirectory() && (st.uid === uid || st.uid === 0) && (st.mode & 0o022) === 0
}

function fsyncPath(p) {
  const fd = openSync(p, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Every file under `dir` on disk before it is marked complete (a power loss must not leave a marked, empty bundle). */
function syncAll(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) syncAll(p)
    fsyncPath(p)
  }
  fsyncPath(dir)
}

async function build(dir, hash) {
  const { build: esbuild } = await import('esbuild')
  const tmp = `${dir}.part-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(BUNDLES, { recursive: true, mode: 0o755 })
  if (!trustedDir(BUNDLES)) throw new Error(`${BUNDLES} may be written by another user`)
  const umask = process.umask(0o022)
  try {
    await esbuild({ ...OPTIONS, entryPoints: ENTRIES.map((e) => join(LIB, e)), outdir: tmp, outbase: LIB })
    // Sources changed while esbuild read them (a git pull during this start): this
    // bundle may hold code of neither version, so it is not kept under either name.
    if (libHash() !== hash) throw new Error('lib/ changed during the build')
    syncAll(tmp)
    writeFileSync(join(tmp, 'complete'), '')
    fsyncPath(join(tmp, 'complete'))
    try {
      renameSync(tmp, dir)
    } catch (err) {
      // Another start built the same bundle meanwhile: use that one.
      if (!existsSync(join(dir, 'complete'))) throw err
    }
  } finally {
    process.umask(umask)
    rmSync(tmp, { recursive: true, force: true })
  }
  // Older bundles (of sources since changed) go after a day: a run started before the
  // change may still be loading one.
  for (const old of readdirSync(BUNDLES)) {
    const p = join(BUNDLES, old)
    if (p !== dir && Date.now() - statSync(p).mtimeMs > 86_400_000) rmSync(p, { recursive: true, force: true })
  }
}

let tsxReady
function viaTsx(path) {
  tsxReady ??= import('tsx/esm/api').then(({ register }) => register())
  return tsxReady.then(() => import(pathToFileURL(join(LIB, path)).href))
}

/** Loads lib/<path>: from the bundle of the current sources, else through tsx. */
export async function loadLib(path) {
  if (process.env.ETCD_RESCUE_NO_BUNDLE || !ENTRIES.includes(path)) return viaTsx(path)
  let dir
  try {
    const hash = libHash()
    dir = join(BUNDLES, hash)
    if (!existsSync(join(dir, 'complete'))) await build(dir, hash)
    if (!trustedDir(BUNDLES) || !trustedDir(dir)) return viaTsx(path)
  } catch {
    return viaTsx(path)
  }
  try {
    return await import(pathToFileURL(join(dir, path.replace(/\.ts$/, '.mjs'))).href)
  } catch {
    // A bundle that does not load (a chunk lost or cut short) must not stop a recovery:
    // set it aside for the next start to rebuild, and load the sources through tsx.
    // (A module that throws while it runs throws the same way there, and is reported.)
    rmSync(dir, { recursive: true, force: true })
    return viaTsx(path)
  }
}

/** The arguments after the script's own path, whether run by zx or node. */
export function scriptArgs(scriptUrl) {
  const name = new URL(scriptUrl).pathname.split('/').pop()
  const i = process.argv.findIndex((a) => a.endsWith(name))
  return process.argv.slice(i + 1)
}
