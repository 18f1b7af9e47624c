// OpenSSH known_hosts, read the way ssh(1) reads it: ssh2 accepts any host key
// unless we check, and does not read known_hosts itself. Understood: plain and
// comma-separated names, `[host]:port` for non-22 ports, hashed `|1|salt|hash`
// entries, `*`/`?` patterns, `!` negation, and the @revoked marker.
// @cert-authority lines are skipped: host certificates are not supported.
import { createHash, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'

export interface KnownHostKey {
  /** Key type as written, e.g. ssh-ed25519. */
  type: string
  /** The public key blob (SSH wire format), as the server sends it. */
  blob: Buffer
  revoked: boolean
  /** file:line, for messages. */
  source: string
}

interface Entry extends KnownHostKey {
  patterns: string[]
}

/** The name ssh looks up for a host: `host` on port 22, else `[host]:port`. */
export function lookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** SHA256:base64 fingerprint as ssh-keygen -l prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/** The key type inside a wire-format blob (its first string). */
export function blobType(blob: Buffer): string {
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')
  return new RegExp(`^${re}$`, 'i')
}

function matchesHashed(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split('|')
  if (magic !== '1' || !salt || !hash) return false
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
  return mac === hash
}

function matches(patterns: string[], name: string): boolean {
  let hit = false
  for (const p of patterns) {
    if (p.startsWith('|')) {
      if (matchesHashed(p, name)) hit = true
    } else if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(name)) return false
    } else if (globToRegExp(p).test(name)) {
      hit = true
    }
  }
  return hit
}

export class KnownHosts {
  private constructor(
    readonly files: string[],
    private readonly entries: Entry[],
  ) {}

  /** Reads the files that exist; a missing file is an empty one, as for ssh. */
  static load(files: string[]): KnownHosts {
    const entries: Entry[] = []
    for (const file of files) {
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      entries.push(...parse(text, file))
    }
    return new KnownHosts(files, entries)
  }

  static parse(text: string, source = 'known_hosts'): KnownHosts {
    return new KnownHosts([source], parse(text, source))
  }

  /** Keys on record for host:port (revoked ones included, flagged). */
  keysFor(host: string, port: number): KnownHostKey[] {
    const name = lookupName(host, port)
    return this.entries.filter((e) => matches(e.patterns, name))
  }

  /**
   * The verdict ssh would give: `ok` when a non-revoked key on record equals the
   * key seen, `revoked`, `mismatch` when keys are on record but none equal, or
   * `unknown` when the host has no key on record.
   */
  check(host: string, port: number, seen: Buffer): 'ok' | 'unknown' | 'mismatch' | 'revoked' {
    const keys = this.keysFor(host, port)
    if (keys.some((k) => k.revoked && k.blob.equals(seen))) return 'revoked'
    const live = keys.filter((k) => !k.revoked)
    if (live.some((k) => k.blob.equals(seen))) return 'ok'
    return live.length ? 'mismatch' : 'unknown'
  }
}

function parse(text: string, file: string): Entry[] {
  const out: Entry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const fields = line.split(/\s+/)
    let revoked = false
    if (fields[0].startsWith('@')) {
      const marker = fields.shift()
      if (marker === '@cert-authority') return
      revoked = marker === '@revoked'
    }
    const [hosts, type, b64] = fields
    if (!hosts || !type || !b64) return
    const blob = Buffer.from(b64, 'base64')
    if (blob.length < 8) return
    out.push({ patterns: hosts.split(','), type, blob, revoked, source: `${file}:${i + 1}` })
  })
  return out
}

/** ssh2 algorithm names that can verify a host key of this type. */
export function hostKeyAlgorithms(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
  return [type]
}
