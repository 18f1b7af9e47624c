#!/usr/bin/env zx
// Take a verified snapshot of a live etcd cluster over SSH. See --help.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('cli/backup.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
