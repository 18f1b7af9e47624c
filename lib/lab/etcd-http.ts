// etcd's HTTP endpoints on lab hosts, reached from the machine over the bridge:
// /health, and the v3 JSON gateway (same paths on 3.4 and 3.5, base64 keys and
// values). tini labs are plain HTTP; --tls systemd labs are https with the lab's
// own copy of each host's admin certificate.
import { readFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'

export const CLIENT_PORT = 2379
export const PEER_PORT = 2380

export function clientUrl(address: string): string {
  return `http://${address}:${CLIENT_PORT}`
}

export function peerUrl(address: string): string {
  return `http://${address}:${PEER_PORT}`
}

/** PEM files on this machine for a --tls lab's https client URL. */
export interface LocalTls {
  ca: string
  cert: string
  key: string
}

/** true: healthy; false: answers, not healthy; undefined: no answer in time. */
export async function etcdHealth(address: string, timeoutMs: number, tls?: LocalTls): Promise<boolean | undefined> {
  if (tls) return httpsHealth(address, timeoutMs, tls)
  try {
    const res = await fetch(`${clientUrl(address)}/health`, { signal: AbortSignal.timeout(timeoutMs) })
    const body = (await res.json()) as { health?: string | boolean }
    return res.ok && String(body.health) === 'true'
  } catch {
    return undefined
  }
}

function httpsHealth(address: string, timeoutMs: number, tls: LocalTls): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest({
      host: address, port: CLIENT_PORT, path: '/health', timeout: timeoutMs,
      ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key),
    }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && String((JSON.parse(body) as { health?: unknown }).health) === 'true')
        } catch {
          resolve(false)
        }
      })
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** A --tls lab's files for host HOST, kept in its pki/ directory. */
export function labTls(paths: { pki: string }, host: string): LocalTls {
  return { ca: `${paths.pki}/ca.pem`, cert: `${paths.pki}/admin-${host}.pem`, key: `${paths.pki}/admin-${host}-key.pem` }
}
