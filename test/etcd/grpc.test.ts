// HashKV over gRPC (lib/etcd/grpc.ts): the protobuf fields written and read by
// hand, the gRPC frame, and one unary call against a local HTTP/2 server that
// answers as etcd does (a message and grpc-status 0), refuses (a non-zero status
// with its message), or never answers.
import { connect, type Socket } from 'node:net'
import { constants, createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { grpcFrame, grpcMessage, grpcUnary, hashKvRequest, parseHashKvResponse } from '../../lib/etcd/grpc.ts'
import { readFields, varint } from '../../lib/etcd/protobuf.ts'

describe('protobuf by hand', () => {
  it('writes varints as protobuf does, a negative int64 in ten bytes', () => {
    expect(varint(0n)).toEqual(Buffer.from([0]))
    expect(varint(1n)).toEqual(Buffer.from([1]))
    expect(varint(127n)).toEqual(Buffer.from([0x7f]))
    expect(varint(128n)).toEqual(Buffer.from([0x80, 0x01]))
    expect(varint(300n)).toEqual(Buffer.from([0xac, 0x02]))
    expect(varint(-1n)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))
  })

  it('reads back what it writes, and skips fields of the other wire types', () => {
    for (const n of [0n, 1n, 150n, 2n ** 32n, 2n ** 63n - 1n]) expect(readFields(Buffer.concat([Buffer.from([0x08]), varint(n)])).get(1)).toBe(n)
    const msg = Buffer.concat([
      Buffer.from([0x09]), Buffer.alloc(8, 0xee), // field 1, fixed64: skipped
      Buffer.from([0x12, 3]), Buffer.from('abc'), // field 2, bytes
      Buffer.from([0x1d]), Buffer.alloc(4, 0xee), // field 3, fixed32: skipped
      Buffer.from([0x20]), varint(7n), // field 4, varint
    ])
    const f = readFields(msg)
    expect(f.get(2)).toEqual(Buffer.from('abc'))
    expect(f.get(4)).toBe(7n)
    expect(f.has(1)).toBe(false)
  })

  it('refuses a message cut short or malformed instead of reading past it', () => {
    expect(() => readFields(Buffer.from([0x08, 0x80]))).toThrow(/varint runs past the end/)
    expect(() => readFields(Buffer.from([0x12, 5, 1, 2]))).toThrow(/runs past the end/)
    expect(() => readFields(Buffer.from([0x0b]))).toThrow(/wire type 3/)
    expect(() => readFields(Buffer.from([0x08, ...Buffer.alloc(10, 0x80), 1]))).toThrow(/longer than 10 bytes/)
  })

  it('asks HashKV at a revision and reads its answer: hash, revision, a compact revision of -1', () => {
    expect(hashKvRequest(120)).toEqual(Buffer.from([0x08, 120]))
    const header = Buffer.concat([Buffer.from([0x08]), varint(2n ** 63n + 5n), Buffer.from([0x18]), varint(28268n)])
    const answer = Buffer.concat([Buffer.from([0x0a, header.length]), header, Buffer.from([0x10]), varint(4294967295n), Buffer.from([0x18]), varint(-1n)])
    expect(parseHashKvResponse(answer)).toEqual({ hash: '4294967295', revision: 28268, compactRevision: -1 })
    expect(() => parseHashKvResponse(Buffer.from([0x10, 1]))).toThrow(/no header/)
  })

  it('frames a gRPC message and reads one back, refusing a length that does not match', () => {
    const framed = grpcFrame(Buffer.from('hello'))
    expect(framed).toEqual(Buffer.from([0, 0, 0, 0, 5, ...Buffer.from('hello')]))
    expect(grpcMessage(framed)).toEqual(Buffer.from('hello'))
    expect(() => grpcMessage(framed.subarray(0, 8))).toThrow(/says 5 bytes, the answer holds 3/)
    expect(() => grpcMessage(Buffer.from([1, 0, 0, 0, 0]))).toThrow(/compressed/)
  })
})

describe('grpcUnary', () => {
  const servers: Http2Server[] = []
  const sockets: Socket[] = []
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.destroy())
    servers.splice(0).forEach((s) => s.close())
  })

  async function serve(answer: (stream: ServerHttp2Stream, body: Buffer) => void): Promise<Socket> {
    const server = createServer()
    servers.push(server)
    server.on('stream', (stream) => {
      stream.on('error', () => {})
      const body: Buffer[] = []
      stream.on('data', (c: Buffer) => body.push(c))
      stream.on('end', () => answer(stream, Buffer.concat(body)))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const s = connect((server.address() as AddressInfo).port, '127.0.0.1')
    sockets.push(s)
    await new Promise((r) => s.once('connect', r))
    return s
  }

  it("returns the answer's message when etcd says status 0", async () => {
    let asked: Buffer | undefined
    const s = await serve((stream, body) => {
      asked = grpcMessage(body)
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(grpcFrame(Buffer.from([0x10, 42])))
    })
    const got = await grpcUnary('http://127.0.0.1', s, '/etcdserverpb.Maintenance/HashKV', hashKvRequest(9), 5000)
    expect(got).toEqual(Buffer.from([0x10, 42]))
    expect(asked).toEqual(hashKvRequest(9))
  })

  it("rejects with etcd's status and message when it refuses", async () => {
    const s = await serve((stream) => {
      // A trailers-only answer, as gRPC sends an error.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '11', 'grpc-message': 'etcdserver%3A%20mvcc%3A%20required%20revision%20is%20a%20future%20revision' }, { endStream: true })
    })
    await expect(grpcUnary('http://127.0.0.1', s, '/etcdserverpb.Maintenance/HashKV', hashKvRequest(9), 5000))
      .rejects.toThrow('gRPC status 11: etcdserver: mvcc: required revision is a future revision')
  })

  it('rejects at once a stream the server resets, or a connection it ends with an error (GOAWAY), not at the timeout', async () => {
    const reset = await serve((stream) => stream.close(constants.NGHTTP2_REFUSED_STREAM))
    await expect(grpcUnary('http://127.0.0.1', reset, '/x', Buffer.alloc(0), 60_000)).rejects.toThrow(/REFUSED_STREAM|error code 7/)
    const away = await serve((stream) => stream.session!.goaway(constants.NGHTTP2_INTERNAL_ERROR))
    await expect(grpcUnary('http://127.0.0.1', away, '/x', Buffer.alloc(0), 60_000)).rejects.toThrow(/GOAWAY, code 2|closed/)
  }, 20_000)

  it('shows a grpc-message that is not percent-encoded as it came', async () => {
    const s = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': '100% bad' }, { endStream: true })
    })
    await expect(grpcUnary('http://127.0.0.1', s, '/x', Buffer.alloc(0), 5000)).rejects.toThrow('gRPC status 13: 100% bad')
  })

  it('counts opening the connection in its timeout, and ends a connection that comes up too late', async () => {
    const late = new PassThrough()
    let arrive!: (s: PassThrough) => void
    const opening = new Promise<PassThrough>((r) => { arrive = r })
    await expect(grpcUnary('http://127.0.0.1', opening, '/x', Buffer.alloc(0), 100)).rejects.toThrow(/timed out after 100 ms \(connecting\)/)
    arrive(late)
    await expect.poll(() => late.destroyed).toBe(true)
  })

  it('rejects an answer with no gRPC status, and one that never comes', async () => {
    const s = await serve((stream) => {
      stream.respond({ ':status': 200 })
      stream.end(grpcFrame(Buffer.alloc(0)))
    })
    await expect(grpcUnary('http://127.0.0.1', s, '/x', Buffer.alloc(0), 5000)).rejects.toThrow(/without a gRPC status/)
    const silent = await serve(() => {})
    await expect(grpcUnary('http://127.0.0.1', silent, '/x', Buffer.alloc(0), 200)).rejects.toThrow(/timed out after 200 ms/)
  })
})
