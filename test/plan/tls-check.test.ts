// tls_check run for real under each /bin/sh etcd-rescue meets, on files made by
// this machine's openssl: what it prints and how that is read.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TLS_CHECK, parseTlsLines } from '../../lib/plan/tls-check.ts'
import { SHELLS, available } from '../support/shells.ts'
import { hasOpenssl, makeCerts } from '../support/certs.ts'

describe.each(SHELLS)('tls_check under %s', (_name, shell) => {
  it.skipIf(!available(shell) || !hasOpenssl)('names a missing file and an expired certificate; a valid one and a key pass; each file checked once', () => {
    const c = makeCerts()
    const gone = join(c.dir, 'gone.pem')
    // openssl as the host has it, each call logged.
    const tools = join(c.dir, 'bin')
    mkdirSync(tools)
    const real = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim()
    writeFileSync(join(tools, 'openssl'), `#!/bin/sh\necho "$*" >> ${c.dir}/openssl.log\nexec ${real} "$@"\n`)
    chmodSync(join(tools, 'openssl'), 0o755)
    const script = `${TLS_CHECK.text}\nfor f in "$@"; do tls_check t. "$f"; done; tls_check u. "$1"`
    const r = spawnSync(shell[0], [...shell.slice(1), '-c', script, 'sh', c.valid, c.expired, c.key, gone, c.expired, c.valid], { encoding: 'utf8', env: { ...process.env, PATH: `${tools}:${process.env.PATH}` } })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe(`t.expired=Jan  1 00:00:00 2021 GMT ${c.expired}\nt.missing=${gone}\n`)
    // Once per prefix and file, and never for a key.
    expect(readFileSync(join(c.dir, 'openssl.log'), 'utf8').trim().split('\n').map((l) => l.split(' ').pop())).toEqual([c.valid, c.expired, c.valid])
    // A bundle whose first certificate expired, as during a CA rotation: not judged by it.
    const bundle = join(c.dir, 'bundle.pem')
    writeFileSync(bundle, readFileSync(c.expired, 'utf8') + readFileSync(c.valid, 'utf8'))
    expect(spawnSync(shell[0], [...shell.slice(1), '-c', `${TLS_CHECK.text}\ntls_check t. "$1"`, 'sh', bundle], { encoding: 'utf8' }).stdout).toBe('')
    expect(parseTlsLines(r.stdout.split('\n'), 't.')).toEqual({ missing: [gone], unreadable: [], expired: [{ file: c.expired, notAfter: 'Jan 1 00:00:00 2021 GMT' }] })
  })
})
