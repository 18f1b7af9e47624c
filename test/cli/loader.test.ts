// scripts/_ts.mjs: entry points load lib from a bundle named by the hash of every
// source under lib/, so a bundle is never used for sources other than its own.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ENTRIES, libHash, trustedDir } from '../../scripts/_ts.mjs'

const ROOT = new URL('../../', import.meta.url).pathname

describe('the bundle name', () => {
  it('changes with any source under lib/, and with nothing else there', () => {
    const lib = `${mkdtempSync(join(tmpdir(), 'lib-'))}/`
    mkdirSync(join(lib, 'cli'))
    writeFileSync(join(lib, 'cli', 'recover.ts'), 'export const a = 1\n')
    const first = libHash(lib)
    expect(libHash(lib)).toBe(first)
    mkdirSync(join(lib, '.bundle', 'x'), { recursive: true })
    writeFileSync(join(lib, '.bundle', 'x', 'recover.mjs'), 'old')
    writeFileSync(join(lib, 'README.md'), 'notes')
    expect(libHash(lib)).toBe(first)
    writeFileSync(join(lib, 'cli', 'recover.ts'), 'export const a = 2\n')
    const changed = libHash(lib)
    expect(changed).not.toBe(first)
    mkdirSync(join(lib, 'etcd'))
    writeFileSync(join(lib, 'etcd', 'new.ts'), '')
    expect(libHash(lib)).not.toBe(changed)
    rmSync(lib, { recursive: true, force: true })
  })

  it('covers every entry point a script loads', () => {
    const scripts = spawnSync('/bin/sh', ['-c', "grep -ho \"loadLib('[^']*')\" scripts/*.mjs | sort -u"], { cwd: ROOT, encoding: 'utf8' }).stdout
    const loaded = [...scripts.matchAll(/loadLib\('([^']*)'\)/g)].map((m) => m[1]).sort()
    expect(loaded.length).toBeGreaterThan(0)
    expect([...ENTRIES].sort()).toEqual(loaded)
  })
})

describe('where a bundle may be loaded from', () => {
  it('only a directory of this user (or root) that no one else can write', () => {
    const d = mkdtempSync(join(tmpdir(), 'bundle-dir-'))
    try {
      chmodSync(d, 0o755)
      expect(trustedDir(d)).toBe(true)
      chmodSync(d, 0o775)
      expect(trustedDir(d)).toBe(false)
      chmodSync(d, 0o757)
      expect(trustedDir(d)).toBe(false)
      chmodSync(d, 0o755)
      if (process.getuid?.() === 0) {
        chownSync(d, 65534, 65534) // nobody's: another account could have planted it
        expect(trustedDir(d)).toBe(false)
      }
    } finally {
      rmSync(d, { recursive: true, force: true })
    }
  })
})

describe('an entry point', () => {
  it('says the same from the bundle and through tsx', () => {
    const run = (env: Record<string, string>) => spawnSync(process.execPath, [join(ROOT, 'scripts/recover.mjs'), '--inventory', '/nonexistent/hosts.ini', '--snapshot', '/nonexistent.db'], { cwd: tmpdir(), encoding: 'utf8', env: { ...process.env, ...env } })
    const viaBundle = run({})
    const viaTsx = run({ ETCD_RESCUE_NO_BUNDLE: '1' })
    expect(viaBundle.status).toBe(2)
    expect(viaBundle.status).toBe(viaTsx.status)
    expect(viaBundle.stdout + viaBundle.stderr).toBe(viaTsx.stdout + viaTsx.stderr)
  })

  it('finds the checkout from a bundle in lib/.bundle/ as from lib/lab/', async () => {
    const { build } = await import('esbuild')
    const out = join(ROOT, 'lib', '.bundle', `test-${process.pid}`)
    try {
      await build({ entryPoints: [join(ROOT, 'lib', 'lab', 'paths.ts')], bundle: true, format: 'esm', platform: 'node', packages: 'external', outfile: join(out, 'paths.mjs'), logLevel: 'silent' })
      const bundled = await import(join(out, 'paths.mjs'))
      const direct = await import('../../lib/lab/paths.ts')
      expect(bundled.REPO_ROOT).toBe(ROOT)
      expect(direct.REPO_ROOT).toBe(ROOT)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })

  it('falls back to tsx when its bundle does not load, and the next start builds it anew', () => {
    // A checkout of its own (lib, scripts, package.json; node_modules linked), so the
    // bundle broken here is no other test's.
    const root = mkdtempSync(join(tmpdir(), 'checkout-'))
    try {
      for (const d of ['lib', 'scripts']) cpSync(join(ROOT, d), join(root, d), { recursive: true, filter: (src) => !src.includes('/.bundle') })
      cpSync(join(ROOT, 'package.json'), join(root, 'package.json'))
      symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'))
      const run = (env: Record<string, string> = {}) => spawnSync(process.execPath, [join(root, 'scripts/recover.mjs'), '--inventory', '/nonexistent/hosts.ini', '--snapshot', '/nonexistent.db'], { cwd: tmpdir(), encoding: 'utf8', env: { ...process.env, ...env } })
      const want = run({ ETCD_RESCUE_NO_BUNDLE: '1' })
      expect(want.status).toBe(2)
      expect(run().stderr).toBe(want.stderr)
      const [hash] = readdirSync(join(root, 'lib', '.bundle'))
      const dir = join(root, 'lib', '.bundle', hash)
      for (const f of readdirSync(dir).filter((n) => n.startsWith('chunk-'))) writeFileSync(join(dir, f), '') // cut short, still marked complete
      const broken = run()
      expect(broken.status).toBe(2)
      expect(broken.stderr).toBe(want.stderr)
      expect(existsSync(dir)).toBe(false)
      expect(run().stderr).toBe(want.stderr)
      expect(existsSync(join(dir, 'complete'))).toBe(true)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
