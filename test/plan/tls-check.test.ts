// tls_check run for real under each /bin/sh etcd-rescue meets, on files made by
// this machine's openssl: what it prints, and how this machine reads it.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { TLS_CHECK, expiredInRole, parseTlsLines } from '../../lib/plan/tls-check.ts'
import { SHELLS, available } from '../support/shells.ts'
import { hasOpenssl, makeCerts } from '../support/certs.ts'

describe.each(SHELLS)('tls_check under %s', (_name, shell) => {
  it.skipIf(!available(shell) || !hasOpenssl)('names a missing file and an expired certificate by the host\'s clock; a valid one and a key pass; a file with more certificates is marked so its role decides; no openssl', () => {
    const c = makeCerts()
    const gone = join(c.dir, 'gone.pem')
    const bundle = join(c.dir, 'bundle.pem')
    // Two certificates, the first expired: a CA bundle during a rotation (not judged by its
    // first), or a certificate file that holds its chain, an expired leaf first (judged by it).
    writeFileSync(bundle, readFileSync(c.expired, 'utf8') + readFileSync(c.valid, 'utf8'))
    // A key, then its (expired) certificate, CRLF: the certificate is found after the key.
    const keyCert = join(c.dir, 'key-cert.pem')
    writeFileSync(keyCert, (readFileSync(c.key, 'utf8') + readFileSync(c.expired, 'utf8')).replace(/\n/g, '\r\n'))
    // No openssl is started on the host: one that would say so is first on PATH.
    const tools = join(c.dir, 'bin')
    mkdirSync(tools)
    writeFileSync(join(tools, 'openssl'), `#!/bin/sh\necho called >> ${c.dir}/openssl.log\nexit 1\n`)
    chmodSync(join(tools, 'openssl'), 0o755)
    const script = `${TLS_CHECK.text}\nfor f in "$@"; do tls_check t. "$f"; done`
    const r = spawnSync(shell[0], [...shell.slice(1), '-c', script, 'sh', c.valid, c.expired, c.key, gone, c.expired, bundle, keyCert], { encoding: 'utf8', env: { ...process.env, PATH: `${tools}:${process.env.PATH}` } })
    expect(r.status, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    // Each file once.
    expect(lines.filter((l) => l === `t.cert=${c.expired}`)).toHaveLength(1)
    const now = Math.floor(Date.now() / 1000)
    const expired = { notAfter: 'Jan 1 00:00:00 2021 GMT' }
    const state = parseTlsLines(lines, 't.', now)
    expect(state).toEqual({ missing: [gone], unreadable: [], notFile: [], expired: [{ file: c.expired, ...expired }, { file: bundle, ...expired, bundle: true }, { file: keyCert, ...expired }] })
    expect(state.expired.map((e) => [expiredInRole(e, 'cert'), expiredInRole(e, 'ca')])).toEqual([[true, true], [true, false], [true, true]])
    // Judged by the host's clock: on a host whose clock says 2020, it has not expired yet.
    expect(parseTlsLines(lines, 't.', Date.parse('2020-06-01T00:00:00Z') / 1000).expired).toEqual([])
    expect(() => readFileSync(join(c.dir, 'openssl.log'))).toThrow()
  })

  it.skipIf(!available(shell) || !hasOpenssl)('names a FIFO, a device or a directory as no regular file at once, reads at most 64 KiB, and leaves IFS and globbing as they were', () => {
    const c = makeCerts()
    const fifo = join(c.dir, 'fifo.pem')
    execFileSync('mkfifo', [fifo])
    // 1 MiB of text with no newline, then a certificate: past what is read.
    const big = join(c.dir, 'big.pem')
    writeFileSync(big, 'x'.repeat(1 << 20) + '\n' + readFileSync(c.expired, 'utf8'))
    // An expired certificate, then more than is read: a second one may follow (a CA bundle).
    const longCa = join(c.dir, 'long-ca.pem')
    writeFileSync(longCa, readFileSync(c.expired, 'utf8') + '# comment\n'.repeat(7000) + readFileSync(c.valid, 'utf8'))
    writeFileSync(join(c.dir, 'glob-me'), '')
    const script = `${TLS_CHECK.text}
cd "$1"
for f in "$2" /dev/zero "$1" "$3" "$4" "$5"; do tls_check t. "$f"; done
set -- glob-*
echo "glob=$1"
IFS=:; tls_check i. "$4"; echo "ifs=[$IFS]"
unset IFS; tls_check j. "$4"; echo "ifs-set=\${IFS+yes}"
set -f; tls_check u. "$4"; case $- in *f*) echo still-off ;; esac`
    const r = spawnSync(shell[0], [...shell.slice(1), '-c', script, 'sh', c.dir, fifo, big, c.expired, longCa], { encoding: 'utf8', timeout: 10_000 })
    expect(r.error).toBeUndefined()
    expect(r.status, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    const expired = { notAfter: 'Jan 1 00:00:00 2021 GMT' }
    expect(parseTlsLines(lines, 't.', Math.floor(Date.now() / 1000))).toEqual({ missing: [], unreadable: [], notFile: [fifo, '/dev/zero', c.dir], expired: [{ file: c.expired, ...expired }, { file: longCa, ...expired, bundle: true }] })
    expect(lines).toContain('glob=glob-me')
    expect(lines).toContain('ifs=[:]')
    expect(lines).toContain('ifs-set=')
    expect(lines).toContain('still-off')
  })

  it.skipIf(!available(shell) || process.getuid?.() !== 0)('calls a file in a directory this run cannot enter unreadable, not missing', () => {
    const c = makeCerts()
    const priv = join(c.dir, 'priv')
    mkdirSync(priv, { mode: 0o700 })
    writeFileSync(join(priv, 'cert.pem'), readFileSync(c.valid))
    chmodSync(c.dir, 0o755)
    const script = `${TLS_CHECK.text}\ntls_check t. "$1"; tls_check t. "$2"`
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', shell[0], ...shell.slice(1), '-c', script, 'sh', join(priv, 'cert.pem'), join(c.dir, 'gone.pem')], { encoding: 'utf8', timeout: 10_000 })
    expect(r.status, r.stderr).toBe(0)
    expect(parseTlsLines(r.stdout.split('\n'), 't.')).toEqual({ missing: [join(c.dir, 'gone.pem')], unreadable: [join(priv, 'cert.pem')], notFile: [], expired: [] })
  })
})
