// The one etcd call the JSON gateway cannot make: Maintenance.HashKV (the gateway
// maps it onto /v3/maintenance/hash, which answers Hash instead). It is asked over
// gRPC itself, HTTP/2 on a connection the member's host forwards (as the gateway's
// are), so verification starts no etcdctl process on any host. The request and the
// answer are a few protobuf fields, encoded and read here by hand.
import { connect as http2Connect, constants } from 'node:http2'
import type { Duplex } from 'node:stream'

/** A base-128 varint, as protobuf writes an int64 (a negative one in ten bytes). */
export function varint(n: bigint): Buffer {
  let v = BigInt.asUintN(64, n)
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v) b |= 0x80
    out.push(b)
  } while (v)
  return Buffer.from(out)
}

/** Protobuf fields of one message: field number to its last value (varints as bigint, length-delimited as bytes). */
export function readFields(buf: Buffer): Map<number, bigint | Buffer> {
  const fields = new Map<number, bigint | Buffer>()
  let i = 0
  const readVarint = (): bigint => {
    let v = 0n
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new Error('protobuf: a varint runs past the end')
      if (shift > 63n) throw new Error('protobuf: a varint longer than 10 bytes')
      const b = buf[i++]
      v |= BigInt(b & 0x7f) << shift
      if (!(b & 0x80)) return BigInt.asUintN(64, v)
    }
  }
  while (i < buf.length) {
    const key = readVarint()
    const field = Number(key >> 3n)
    switch (Number(key & 7n)) {
      case 0: fields.set(field, readVarint()); break
      case 1: i += 8; break
      case 2: {
        const len = Number(readVarint())
        if (i + len > buf.length) throw new Error('protobuf: a field runs past the end')
        fields.set(field, buf.subarray(i, i + len))
        i += len
        break
      }
      case 5: i += 4; break
      default: throw new Error(`protobuf: wire type ${Number(key & 7n)} is not one etcd sends here`)
    }
    if (i > buf.length) throw new Error('protobuf: a field runs past the end')
  }
  return fields
}

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
 * One unary gRPC call over `socket` (already TLS, with ALPN h2, for an https
 * member). Resolves with the answer's message; rejects with grpc-status and
 * grpc-message when etcd refused it, or at the timeout.
 */
export function grpcUnary(authority: string, socket: Duplex, path: string, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(authority, { createConnection: () => socket as never })
    let settled = false
    const done = (err: Error | undefined, value?: Buffer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      session.close()
      session.destroy()
      if (err) reject(err)
      else resolve(value!)
    }
    const timer = setTimeout(() => done(new Error(`${path} timed out after ${timeoutMs} ms`)), timeoutMs)
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
