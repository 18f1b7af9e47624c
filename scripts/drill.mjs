#!/usr/bin/env zx
// Rehearse a whole etcd disaster and recovery on a lab (or a staging inventory). See --help.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('cli/drill.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
