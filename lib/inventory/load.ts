// loadInventory(): a file or a directory, read as Ansible would read `-i PATH`.
//
// Which reader: `.yml`, `.yaml` and `.json` files are YAML; files with no extension are
// YAML if they hold a YAML mapping, else INI (Ansible tries its yaml plugin first);
// anything else is INI. A directory is read entry by entry in name order, recursing into
// subdirectories and skipping what Ansible skips: hidden entries, group_vars/,
// host_vars/, vars_plugins/ and files ending in .ini, .cfg, .md, .txt, .rst, .bak, .orig,
// .retry, .swp, .pyc, .pyo, .rpm or `~`. Yes, `.ini` files inside an inventory directory
// are ignored by Ansible; we remember them to say so when the group is then missing.
//
// Not supported (an error says so): inventory scripts, plugin configurations
// (`plugin: aws_ec2`), TOML, comma-separated host lists.

import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, extname, join, resolve } from 'node:path'
import { InputError } from '../errors.ts'
import { parseIni } from './ini.ts'
import { Inventory } from './model.ts'
import { loadVarsFiles } from './vars.ts'
import { parseYamlInventory } from './yaml.ts'
import { loadYamlOrJson } from './yaml-values.ts'

const IGNORED = /^\.|^host_vars$|^group_vars$|^vars_plugins$|(?:\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.ini|\.cfg|\.retry)$/
const YAML_EXTENSIONS = ['.yml', '.yaml', '.json']

/** Read an inventory file or directory; InputError (exit 2) naming file and line on bad input. */
export function loadInventory(path: string): Inventory {
  const stat = statSync(path, { throwIfNoEntry: false })
  if (!stat) {
    throw new InputError(`inventory not found: ${path}`, { hint: 'Pass the inventory file (e.g. inventory/hosts.ini) or directory with --inventory.' })
  }
  const inv = new Inventory(path, stat.isDirectory() ? resolve(path) : dirname(resolve(path)))
  if (stat.isDirectory()) readDirectory(path, inv)
  else readFile(path, inv)
  inv.reconcile()
  loadVarsFiles(inv)
  return inv
}

function readDirectory(dir: string, inv: Inventory): void {
  for (const entry of readdirSync(dir).sort()) {
    const full = join(dir, entry)
    if (IGNORED.test(entry)) {
      if (!entry.startsWith('.') && statSync(full, { throwIfNoEntry: false })?.isFile()) inv.ignoredFiles.push(full)
      continue
    }
    const stat = statSync(full, { throwIfNoEntry: false })
    if (stat?.isDirectory()) readDirectory(full, inv)
    else if (stat?.isFile()) readFile(full, inv)
  }
}

function readFile(file: string, inv: Inventory): void {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new InputError(`cannot read inventory: ${(e as Error).message}`, { where: file, cause: e })
  }
  const ext = extname(file)
  if (ext === '.toml') throw new InputError('TOML inventories are not supported', { where: file, hint: 'Convert it with `ansible-inventory -i FILE --list --yaml --output hosts.yml`.' })
  if (YAML_EXTENSIONS.includes(ext)) return parseYamlInventory(loadYamlOrJson(text, file, inv.warnings), file, inv)
  if (ext === '') {
    // Ansible's yaml plugin gets the first try at extension-less files.
    let yamlError: unknown
    try {
      const warnings: string[] = []
      const loaded = loadYamlOrJson(text, file, warnings)
      const v = loaded.value
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0) {
        inv.warnings.push(...warnings)
        return parseYamlInventory(loaded, file, inv)
      }
    } catch (e) {
      if (!(e instanceof InputError)) throw e
      yamlError = e
    }
    try {
      return parseIni(text, file, inv)
    } catch (e) {
      if (yamlError && looksLikeYaml(text)) throw yamlError
      throw withScriptHint(e, text)
    }
  }
  try {
    parseIni(text, file, inv)
  } catch (e) {
    throw withScriptHint(e, text)
  }
}

// The first meaningful line decides which reader's error is more useful to show.
function looksLikeYaml(text: string): boolean {
  const first = text.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'))
  return first !== undefined && (first === '---' || /^[^\s=[\]]+:(\s|$)/.test(first))
}

function withScriptHint(e: unknown, text: string): unknown {
  if (e instanceof InputError && text.startsWith('#!')) {
    return new InputError(e.message, { where: e.where, cause: e, hint: 'This looks like an inventory script; etcd-rescue reads static inventories only. Save its output with `ansible-inventory -i SCRIPT --list --yaml --output hosts.yml` and use that.' })
  }
  return e
}
