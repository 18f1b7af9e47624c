// etcd's HTTP endpoints on lab hosts, reached from the machine over the bridge:
// /health, and the v3 JSON gateway (same paths on 3.4 and 3.5, base64 keys and
// values). Lab clusters are plain HTTP; recover's TLS clusters go through etcdctl.

export const CLIENT_PORT = 2379
export const PEER_PORT = 2380

export function clientUrl(address: string): string {
  return `http://${address}:${CLIENT_PORT}`
}

export function peerUrl(address: string): string {
  return `http://${address}:${PEER_PORT}`
}

/** true: healthy; false: answers, not healthy; undefined: no answer in time. */
export async function etcdHealth(address: string, timeoutMs: number): Promise<boolean | undefined> {
  try {
    const res = await fetch(`${clientUrl(address)}/health`, { signal: AbortSignal.timeout(timeoutMs) })
    const body = (await res.json()) as { health?: string | boolean }
    return res.ok && String(body.health) === 'true'
  } catch {
    return undefined
  }
}
