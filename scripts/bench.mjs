#!/usr/bin/env zx
// Recovery time: etcd-rescue against an expert by hand with OpenSSH, side by side. See --help.
import { loadLib, scriptArgs } from './_ts.mjs'

const { main } = await loadLib('cli/bench.ts')
process.exitCode = await main(scriptArgs(import.meta.url))
