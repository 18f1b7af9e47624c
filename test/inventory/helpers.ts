// Inventories written to a temporary directory, so each test states its input in full.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { InputError } from '../../lib/errors.ts'
import { loadInventory, type Inventory } from '../../lib/inventory/members.ts'

/** Write `files` (path → text) under a fresh directory; returns that directory. */
export function writeTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'etcd-rescue-inv-'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

/** Load `entry` (default: the first file) from a tree written by writeTree. */
export function load(files: Record<string, string>, entry = Object.keys(files)[0]): Inventory {
  return loadInventory(join(writeTree(files), entry))
}

/** The InputError thrown by `fn`, for asserting on message, where and hint. */
export function inputError(fn: () => unknown): InputError {
  try {
    fn()
  } catch (e) {
    if (e instanceof InputError) return e
    throw e
  }
  throw new Error('expected an InputError, but nothing was thrown')
}
