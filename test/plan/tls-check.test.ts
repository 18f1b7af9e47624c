// tls_check run for real under each /bin/sh etcd-rescue meets, on files made by
// this machine's openssl: what it prints and how that is read.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { TLS_CHECK, parseTlsLines } from '../../lib/plan/tls-check.ts'
import { SHELLS, available } from '../support/shells.ts'
import { hasOpenssl, makeCerts } from '../support/certs.ts'

describe.each(SHELLS)('tls_check under %s', (_name, shell) => {
  it.skipIf(!available(shell) || !hasOpenssl)('names a missing file and an expired certificate; a valid one and a key pass', () => {
    const c = makeCerts()
    const gone = join(c.dir, 'gone.pem')
    const script = `${TLS_CHECK.text}\nfor f in "$@"; do tls_check t. "$f"; done`
    const r = spawnSync(shell[0], [...shell.slice(1), '-c', script, 'sh', c.valid, c.expired, c.key, gone], { encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe(`t.expired=Jan  1 00:00:00 2021 GMT ${c.expired}\nt.missing=${gone}\n`)
    expect(parseTlsLines(r.stdout.split('\n'), 't.')).toEqual({ missing: [gone], unreadable: [], expired: [{ file: c.expired, notAfter: 'Jan 1 00:00:00 2021 GMT' }] })
  })
})
