#!/usr/bin/env zx
// The lab: several SSH + etcd hosts on this machine. See --help, or lib/lab/.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadLib } from './_ts.mjs'

const { main } = await loadLib('cli/lab.ts')
// Under zx, argv holds zx itself before this script; take what follows the script.
const self = fileURLToPath(import.meta.url)
const at = process.argv.findIndex((a) => resolve(a) === self)
process.exitCode = await main(process.argv.slice(at + 1))
