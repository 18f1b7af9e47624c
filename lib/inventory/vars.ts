// group_vars/ and host_vars/ next to the inventory, found the way Ansible's
// host_group_vars plugin and DataLoader.find_vars_files find them:
// - For a group or host NAME, the first that exists of NAME, NAME.yml, NAME.yaml,
//   NAME.json is used, and only that one (a directory NAME wins over NAME.yml).
// - A directory is read recursively, entries in name order, skipping hidden files,
//   backups (`~`) and extensions other than .yml/.yaml/.json; subdirectories with a
//   dot in their name are skipped too.
// - Files are merged in that order, later keys replacing earlier ones; empty files are
//   ignored. Names starting with `/` are skipped (Ansible's "chroot host" rule).

import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { extname, join } from 'node:path'
import { InputError } from '../errors.ts'
import { type Inventory, newVars, type Vars, type Where } from './model.ts'
import { loadYamlOrJson } from './yaml-values.ts'

const EXTENSIONS = ['.yml', '.yaml', '.json']

/** Load group and host variable files for every group and host of `inv`. */
export function loadVarsFiles(inv: Inventory): void {
  for (const [subdir, names, into, origins] of [
    ['group_vars', [...inv.groups.keys()], inv.groupFileVars, inv.groupFileWhere],
    ['host_vars', [...inv.hosts.keys()], inv.hostFileVars, inv.hostFileWhere],
  ] as const) {
    const dir = join(inv.varsDir, subdir)
    if (!existsSync(dir)) continue
    if (!statSync(dir).isDirectory()) {
      inv.warnings.push(`${dir} is not a directory; skipped (as Ansible does)`)
      continue
    }
    const real = realpathSync(dir)
    for (const name of names) {
      if (name.startsWith('/')) continue
      const files = findVarsFiles(real, name)
      if (files.length === 0) continue
      const { vars, where } = readVarsFiles(files, inv.warnings)
      into.set(name, vars)
      origins.set(name, where)
    }
  }
}

/** Ansible's find_vars_files(path, name): the files that hold variables for `name`. */
export function findVarsFiles(dir: string, name: string): string[] {
  for (const ext of ['', ...EXTENSIONS]) {
    const full = join(dir, name) + ext
    if (!existsSync(full)) continue
    return statSync(full).isDirectory() ? dirVarsFiles(full) : [full]
  }
  return []
}

function dirVarsFiles(dir: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir).sort()) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue
    const full = join(dir, entry)
    const ext = extname(entry)
    const stat = statSync(full, { throwIfNoEntry: false }) // a dangling link is skipped
    if (!stat) continue
    if (stat.isDirectory() && !ext) found.push(...dirVarsFiles(full))
    else if (stat.isFile() && (!ext || EXTENSIONS.includes(ext))) found.push(full)
  }
  return found
}

function readVarsFiles(files: string[], warnings: string[]): { vars: Vars; where: Map<string, Where> } {
  const vars = newVars()
  const where = new Map<string, Where>()
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    if (text.startsWith('$ANSIBLE_VAULT;')) {
      // Ansible would ask for the vault password; we cannot decrypt, so say what is missing.
      warnings.push(`${file} is vault-encrypted; its variables are not used`)
      continue
    }
    const { value, lineOf } = loadYamlOrJson(text, file, warnings)
    if (isEmpty(value)) continue // Ansible skips empty files (and `{}`, `[]`, `0`, ...)
    if (typeof value !== 'object' || Array.isArray(value) || value === null || Object.getPrototypeOf(value) !== null) {
      throw new InputError(`expected a mapping of variable names to values, got ${Array.isArray(value) ? 'a list' : typeof value}`, {
        where: file,
        hint: 'A group_vars/host_vars file holds "name: value" lines at the top level.',
      })
    }
    Object.assign(vars, value)
    for (const key of Object.keys(value)) where.set(key, { file, line: lineOf(value, key) })
  }
  return { vars, where }
}

// Python truthiness, which is what Ansible's `if new_data:` tests.
const isEmpty = (v: unknown): boolean =>
  v === null || v === false || v === 0 || v === '' || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v as object).length === 0 && Object.getPrototypeOf(v) === null)
