#!/usr/bin/env zx
// Recover a whole etcd cluster from one snapshot. See --help, or lib/cli/recover.ts.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('cli/recover.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
