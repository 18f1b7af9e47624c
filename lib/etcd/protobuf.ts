// Protobuf's wire format, the little of it etcd-rescue reads and writes by hand:
// varints and length-delimited fields. Read in a WAL's records (plan/survivor-read.ts),
// in HashKV's gRPC answer (grpc.ts), and written by the bench's Kubernetes-like data.

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

/** readFields, or undefined for a message that does not parse (a torn or foreign record). */
export function tryReadFields(buf: Buffer): Map<number, bigint | Buffer> | undefined {
  try {
    return readFields(buf)
  } catch {
    return undefined
  }
}
