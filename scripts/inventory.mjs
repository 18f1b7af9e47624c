#!/usr/bin/env zx
// Show an Ansible inventory as etcd-rescue reads it: --list / --host (same JSON as
// ansible-inventory) or --members. See --help, or lib/cli/inventory.ts.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('cli/inventory.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
