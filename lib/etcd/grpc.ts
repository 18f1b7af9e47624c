// The one etcd call the JSON gateway cannot make: Maintenance.HashKV (the gateway
// maps it onto /v3/maintenance/hash, which answers Hash instead). It is asked over
// gRPC itself, HTTP/2 on a connection the member's host forwards (as the gateway's
// are), so verification starts no etcdctl process on any host. The request and the
// answer are a few protobuf fields, written and read with protobuf.ts.
import { connect as http2Connect, constants } from 'node:http2'
import type { Duplex } from 'node:stream'
import { readFields, varint } from './protobuf.ts'

/** A gRPC message frame: not compressed, its length, the message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(message.length, 1)
  return Buffer.concat([head, message])
}

/** The one message of a unary gRPC answer's body. */
export function grpcMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new Error(`gRPC: an answer of ${body.length} bytes has no message`)
  if (body[0] !== 0) throw new Error('gRPC: the answer is compressed, which was not asked for')
  const len = body.readUInt32BE(1)
  if (body.length !== 5 + len) throw new Error(`gRPC: the message says ${len} bytes, the answer holds ${body.length - 5}`)
  return body.subarray(5)
}

export interface HashKv {
  /** The hash, as etcdctl prints it (a uint32, in decimal). */
  hash: string
  /** The member's revision when it answered. */
  revision: number
  compactRevision: number
}

/** HashKVRequest { int64 revision = 1; } */
export const hashKvRequest = (revision: number): Buffer => Buffer.concat([Buffer.from([0x08]), varint(BigInt(revision))])

/** HashKVResponse { ResponseHeader header = 1; uint32 hash = 2; int64 compact_revision = 3; } (ResponseHeader: revision = 3). */
export function parseHashKvResponse(message: Buffer): HashKv {
  const f = readFields(message)
  const header = f.get(1)
  const hash = f.get(2)
  if (!Buffer.isBuffer(header)) throw new Error('HashKV: the answer has no header')
  if (hash !== undefined && typeof hash !== 'bigint') throw new Error('HashKV: the hash is not a number')
  const revision = readFields(header).get(3)
  const compact = f.get(3)
  return {
    hash: String(hash ?? 0n),
    revision: typeof revision === 'bigint' ? Number(BigInt.asIntN(64, revision)) : 0,
    compactRevision: typeof compact === 'bigint' ? Number(BigInt.asIntN(64, compact)) : 0,
  }
}

/**
 * One unary gRPC call over `connection` (already TLS, with ALPN h2, for an https
 * member), which it owns and ends. Resolves with the answer's message; rejects with
 * grpc-status and grpc-message when etcd refused it, or at the timeout, which
 * counts from the call (opening the connection included).
 */
export async function grpcUnary(authority: string, connection: Duplex | Promise<Duplex>, path: string, message: Buffer, timeoutMs: number): Promise<Buffer> {
  const t0 = Date.now()
  const opening = Promise.resolve(connection)
  let connecting: NodeJS.Timeout | undefined
  const socket = await Promise.race([opening, new Promise<never>((_resolve, reject) => {
    connecting = setTimeout(() => {
      // One that comes up later is not left open.
      void opening.then((s) => s.destroy(), () => {})
      reject(new Error(`${path} timed out after ${timeoutMs} ms (connecting)`))
    }, timeoutMs)
  })]).finally(() => clearTimeout(connecting))
  const left = Math.max(1, timeoutMs - (Date.now() - t0))
  return new Promise((resolve, reject) => {
    const session = http2Connect(authority, { createConnection: () => socket as never })
    let settled = false
    const done = (err: Error | undefined, value?: Buffer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      session.close()
      session.destroy()
      socket.destroy()
      if (err) reject(err)
      else resolve(value!)
    }
    const timer = setTimeout(() => done(new Error(`${path} timed out after ${timeoutMs} ms`)), left)
    session.on('error', (e) => done(e))
    const req = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      'content-type': 'application/grpc',
      te: 'trailers',
    })
    const chunks: Buffer[] = []
    let status: string | undefined
    let why = ''
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status'])
      if (h['grpc-message'] !== undefined) {
        // Percent-encoded by gRPC; a sender that did not is shown as it sent it.
        try { why = decodeURIComponent(String(h['grpc-message'])) } catch { why = String(h['grpc-message']) }
      }
    }
    req.on('response', (h) => {
      const code = Number(h[constants.HTTP2_HEADER_STATUS])
      if (code !== 200) done(new Error(`${path} answered HTTP ${code}`))
      take(h)
    })
    req.on('trailers', take)
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('error', (e) => done(e))
    // Reset or refused (RST_STREAM, GOAWAY) before an answer: said at once, not at the timeout.
    req.on('close', () => done(new Error(`${path}: the stream closed before an answer${req.rstCode ? ` (HTTP/2 error code ${req.rstCode})` : ''}`)))
    session.on('goaway', (code: number, lastStreamId: number) => {
      // A graceful GOAWAY that includes this stream lets it finish; one that does not, ends it.
      if (code !== constants.NGHTTP2_NO_ERROR || req.id === undefined || lastStreamId < req.id) done(new Error(`${path}: the server closed the connection (GOAWAY, code ${code}) before answering`))
    })
    req.on('end', () => {
      if (status === undefined) return done(new Error(`${path}: the answer ended without a gRPC status`))
      if (status !== '0') return done(new Error(`${path} failed: gRPC status ${status}${why ? `: ${why}` : ''}`))
      try {
        done(undefined, grpcMessage(Buffer.concat(chunks)))
      } catch (e) {
        done(e as Error)
      }
    })
    req.end(grpcFrame(message))
  })
}
