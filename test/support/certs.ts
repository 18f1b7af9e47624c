// Certificates made with this machine's openssl for tests of the TLS checks:
// one valid for a year, one that expired in 2021 (openssl ca with explicit
// dates: openssl req has no way to back-date), and a private key.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0

export function makeCerts(): { dir: string; valid: string; expired: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'certs-'))
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  run(['req', '-x509', ...ec, '-keyout', 'key.pem', '-out', 'valid.pem', '-subj', '/CN=valid', '-days', '365'])
  writeFileSync(join(dir, 'index.txt'), '')
  writeFileSync(join(dir, 'serial'), '01\n')
  writeFileSync(join(dir, 'ca.cnf'), '[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[ p ]\ncommonName = supplied\n')
  run(['req', '-new', ...ec, '-keyout', 'old-key.pem', '-out', 'old.csr', '-subj', '/CN=expired'])
  run(['ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'old-key.pem', '-in', 'old.csr', '-out', 'expired.pem', '-startdate', '20200101000000Z', '-enddate', '20210101000000Z'])
  return { dir, valid: join(dir, 'valid.pem'), expired: join(dir, 'expired.pem'), key: join(dir, 'key.pem') }
}
