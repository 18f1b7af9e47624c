// etcd's v3 JSON gateway (POST /v3/kv/put, /v3/kv/range) reached through an
// SSH-forwarded connection from the member's own host, so drills load and read
// data on any inventory the operator can SSH into, firewalled client ports or
// not, with no etcdctl process per key. Keys and values travel base64-encoded.
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect, isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import type { EndpointStatus, ListedMember, TlsFiles } from './etcdctl.ts'
import { readTlsFiles, type CommandRunner } from './tls.ts'
import { grpcUnary, hashKvRequest, parseHashKvResponse, type HashKv } from './grpc.ts'

export type Connect = () => Promise<Duplex>

/** PEM contents for an https client URL: the CA, and the client certificate and key etcd asks for. */
export interface GatewayTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}

export interface KeyValue {
  key: Buffer
  value: Buffer
  modRevision: number
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64')

/** The key just past every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

/** How long a failed read of the TLS files stands before the next request reads them again. */
export const TLS_RETRY_MS = 5000

export class Gateway {
  private tlsFiles?: Promise<GatewayTls>
  private tlsFailure?: { at: number; error: unknown }

  /**
   * `tls` is asked once, on the first request to an https URL (the drill reads
   * the files off the member's host then, through sudo); TLS runs over whatever
   * `connect` gives, an SSH-forwarded channel included.
   */
  constructor(
    private readonly clientUrl: string,
    private readonly connect: Connect,
    private readonly tls?: () => Promise<GatewayTls>,
  ) {
    const protocol = new URL(clientUrl).protocol
    if (protocol !== 'http:' && protocol !== 'https:') throw new TypeError(`the JSON gateway client speaks http and https, not ${protocol}`)
  }

  private async open(alpn?: string[]): Promise<Duplex> {
    const url = new URL(this.clientUrl)
    if (url.protocol === 'http:') return this.connect()
    // Read once and kept. A failed read (a busy host's timeout) is asked again, but not before
    // TLS_RETRY_MS: each read is a command on the host, and a poller asks several times a second.
    if (this.tlsFailure && Date.now() - this.tlsFailure.at < TLS_RETRY_MS) throw this.tlsFailure.error
    const files = await (this.tlsFiles ??= (this.tls ? this.tls() : Promise.resolve<GatewayTls>({})).catch((error: unknown) => {
      this.tlsFiles = undefined
      this.tlsFailure = { at: Date.now(), error }
      throw error
    }))
    const raw = await this.connect()
    const host = url.hostname.replace(/^\[|\]$/g, '')
    // The member's certificate must name the URL's host (an IP SAN for an address), whatever the connection goes through.
    return tlsConnect({ socket: raw, host, servername: isIP(host) ? undefined : host, ca: files.ca, cert: files.cert, key: files.key, ALPNProtocols: alpn })
  }

  /** One request, whatever its answer's status: the body as text. */
  private send(method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.clientUrl)
    return new Promise((resolve, reject) => {
      // http's own request, https or not: TLS is layered in open(), on our connection.
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
        createConnection: this.createConnection(),
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          // The answer is in: its timer must not keep the process alive (a forwarded channel may close much later).
          clearTimeout(timer)
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() })
        })
        res.on('error', reject)
      })
      // An overall timer: an SSH-forwarded channel has no socket timeout, so 'timeout' alone may never fire.
      const timer = setTimeout(() => req.destroy(new Error(`${path} timed out after ${timeoutMs} ms`)), timeoutMs)
      req.on('close', () => clearTimeout(timer))
      req.on('timeout', () => req.destroy(new Error(`${path} timed out after ${timeoutMs} ms`)))
      req.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      req.end(body)
    })
  }

  async post<T>(path: string, body: unknown, timeoutMs = 10_000): Promise<T> {
    const { status, text } = await this.send('POST', path, JSON.stringify(body), timeoutMs)
    if (status !== 200) throw new Error(`${path} answered ${status}: ${text.slice(0, 200)}`)
    return JSON.parse(text) as T
  }

  /** GET /health: etcd answers 503 with a body when unhealthy, so the body is read whatever the status. */
  async health(timeoutMs = 3000): Promise<{ healthy: boolean; reason?: string }> {
    const { status, text } = await this.send('GET', '/health', undefined, timeoutMs)
    try {
      const j = JSON.parse(text) as { health?: string | boolean; reason?: string }
      return { healthy: j.health === true || j.health === 'true', reason: j.reason || (status === 200 ? undefined : `HTTP ${status}`) }
    } catch {
      return { healthy: false, reason: `HTTP ${status}: ${text.slice(0, 100)}` }
    }
  }

  /**
   * `endpoint hashkv --rev=N` of this member: over gRPC (lib/etcd/grpc.ts) on a
   * connection of the same kind, as the gateway has no route for it. The timeout
   * covers the whole call, opening the connection (an SSH forward, TLS) included.
   */
  async hashKv(revision: number, timeoutMs = 15_000): Promise<HashKv> {
    const url = new URL(this.clientUrl)
    const connection = this.open(url.protocol === 'https:' ? ['h2'] : undefined)
    return parseHashKvResponse(await grpcUnary(`${url.protocol}//${url.host}`, connection, '/etcdserverpb.Maintenance/HashKV', hashKvRequest(revision), timeoutMs))
  }

  /** `endpoint status` of this member alone (works without quorum). */
  async status(timeoutMs = 3000): Promise<EndpointStatus> {
    type Raw = { header: Record<string, string>; leader?: string; version: string; dbSize?: string; errors?: string[]; raftIndex?: string }
    const st = await this.post<Raw>('/v3/maintenance/status', {}, timeoutMs)
    return {
      clusterId: String(st.header.cluster_id),
      memberId: String(st.header.member_id),
      revision: Number(st.header.revision ?? 0),
      raftTerm: Number(st.header.raft_term ?? 0),
      leader: String(st.leader ?? '0'),
      version: st.version,
      dbSize: Number(st.dbSize ?? 0),
      errors: st.errors ?? [],
    }
  }

  async memberList(timeoutMs = 5000): Promise<ListedMember[]> {
    const r = await this.post<{ members?: Array<{ ID: string; name?: string; peerURLs?: string[]; clientURLs?: string[] }> }>('/v3/cluster/member/list', {}, timeoutMs)
    return (r.members ?? []).map((m) => ({ id: String(m.ID), name: m.name ?? '', peerUrls: m.peerURLs ?? [], clientUrls: m.clientURLs ?? [] }))
  }

  /** Active alarms, as `etcdctl alarm list` prints them (`memberID:N alarm:NOSPACE`), one a line. */
  async alarms(timeoutMs = 5000): Promise<string> {
    const r = await this.post<{ alarms?: Array<{ memberID?: string; alarm?: string }> }>('/v3/maintenance/alarm', { action: 'GET', memberID: '0', alarm: 'NONE' }, timeoutMs)
    return (r.alarms ?? []).map((a) => `memberID:${a.memberID ?? 0} alarm:${a.alarm ?? 'NONE'}`).join('\n')
  }

  private createConnection() {
    return ((_: unknown, cb: (err: Error | null, s?: Duplex) => void) => {
      this.open().then((s) => cb(null, s), (e) => cb(e))
      return undefined
    }) as never
  }

  async put(key: Buffer | string, value: Buffer | string): Promise<number> {
    const r = await this.post<{ header: { revision: string } }>('/v3/kv/put', { key: b64(key), value: b64(value) })
    return Number(r.header.revision)
  }

  /** Every key under a prefix, read from this member alone (serializable). */
  async rangePrefix(prefix: Buffer | string, options: { serializable?: boolean } = {}): Promise<KeyValue[]> {
    const p = Buffer.from(prefix)
    const r = await this.post<{ kvs?: Array<{ key: string; value?: string; mod_revision: string }> }>('/v3/kv/range', {
      key: b64(p),
      range_end: b64(prefixEnd(p)),
      serializable: options.serializable ?? true,
    }, 60_000)
    return (r.kvs ?? []).map((kv) => ({
      key: Buffer.from(kv.key, 'base64'),
      value: Buffer.from(kv.value ?? '', 'base64'),
      modRevision: Number(kv.mod_revision),
    }))
  }
}

/** A host that opens TCP connections from itself and runs commands: an SSH connection, or a session on one. */
export type ForwardingHost = CommandRunner & { forward(host: string, port: number): Promise<Duplex> }

/**
 * A member's gateway reached from its own host, through a connection that host
 * forwards: no process is started there per request, so a probe costs no login
 * shell. Over https the client certificate etcdctl uses there is read off the
 * host once, on the first request, in one command (see readTlsFiles), and kept
 * in memory only. TLS is verified against the URL's host, as etcdctl on the host would.
 */
export function remoteGateway(host: ForwardingHost, clientUrl: string, tls?: TlsFiles): Gateway {
  const u = new URL(clientUrl)
  return new Gateway(clientUrl, () => host.forward(u.hostname.replace(/^\[|\]$/g, ''), Number(u.port)), tls && (() => readTlsFiles(host, tls)))
}

/** A gateway reached directly over TCP (the lab, from the machine it runs on); TLS files are local paths. */
export function directGateway(clientUrl: string, tls?: { ca?: string; cert?: string; key?: string }): Gateway {
  const u = new URL(clientUrl)
  const read = (f?: string) => (f ? readFileSync(f) : undefined)
  return new Gateway(clientUrl, async () => connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, '')),
    tls && (async () => ({ ca: read(tls.ca), cert: read(tls.cert), key: read(tls.key) })))
}
