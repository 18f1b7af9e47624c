#!/usr/bin/env zx
// Show an Ansible inventory as etcd-rescue reads it: --list / --host (same JSON as
// ansible-inventory) or --members. See --help, or lib/inventory/cli.ts.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('inventory/cli.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
