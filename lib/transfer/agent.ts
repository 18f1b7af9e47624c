// The agent a relay hop borrows the operator's key through. A relay needs the
// source host to log in to a target host, and hosts usually hold no keys for
// each other; the operator holds one for every host. Rather than put a private
// key on a host (or in a target's authorized_keys), the hop's `ssh` on the source
// host authenticates through an agent forwarded from etcd-rescue's own SSH
// connection, served here in process, holding only the key that logs in to that
// one target, and willing to sign:
// - at most `budget` times (one login per relay target; a connection per hop),
// - only SSH user-authentication requests (SSH_MSG_USERAUTH_REQUEST) for the
//   target's user, never arbitrary data (no git or ssh-keygen -Y signatures),
// - only until `close()` (called when the hop's copy ends; the connection that
//   forwards it is closed too).
// Root on the source host could, during the copy, use that one signature for
// another login as that user to a host trusting the key; what it cannot do is
// keep the key, sign more, or sign anything else.
import ssh2, { type ParsedKey } from 'ssh2'
import { Duplex } from 'node:stream'

// ssh2 is CommonJS: its named exports are read off the default one.
const { BaseAgent, utils } = ssh2

const SSH_MSG_USERAUTH_REQUEST = 50

/** Private keys (file contents) that can be lent: parsed, unencrypted, of a type signed here. */
export function lendableKeys(files: Buffer[]): ParsedKey[] {
  const out: ParsedKey[] = []
  for (const f of files) {
    let parsed: ParsedKey | ParsedKey[] | Error
    try {
      parsed = utils.parseKey(f) as ParsedKey | ParsedKey[] | Error
    } catch {
      continue
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed
    if (!key || key instanceof Error || !key.isPrivateKey()) continue
    // ssh2 signs ECDSA in DER, the agent protocol wants SSH's encoding: not lent (a direct copy instead).
    if (key.type !== 'ssh-ed25519' && key.type !== 'ssh-rsa') continue
    out.push(key)
  }
  return out
}

/**
 * What an SSH publickey signature would log in to, or undefined when `data` is not a
 * user-authentication request (RFC 4252 §7: string session id, byte 50, string user,
 * string service, string method, bool, string algorithm, string key; OpenSSH's
 * `publickey-hostbound-v00@openssh.com` adds the server's host key).
 */
export function userauthRequest(data: Buffer): { user: string; hostKey?: Buffer } | undefined {
  let p = 0
  const field = (): Buffer | undefined => {
    if (data.length < p + 4) return undefined
    const n = data.readUInt32BE(p)
    if (data.length < p + 4 + n) return undefined
    const v = data.subarray(p + 4, p + 4 + n)
    p += 4 + n
    return v
  }
  if (!field()) return undefined
  if (data[p] !== SSH_MSG_USERAUTH_REQUEST) return undefined
  p += 1
  const user = field()?.toString()
  const service = field()?.toString()
  const method = field()?.toString()
  if (user === undefined || service !== 'ssh-connection') return undefined
  if (method !== 'publickey' && method !== 'publickey-hostbound-v00@openssh.com') return undefined
  if (data[p] !== 1) return undefined
  p += 1
  if (!field() || !field()) return undefined
  if (method === 'publickey') return p === data.length ? { user } : undefined
  const hostKey = field()
  return hostKey && p === data.length ? { user, hostKey } : undefined
}

export class LendingAgent extends BaseAgent {
  private signed = 0
  private closed = false
  /** What was refused, for the hop's error message. */
  readonly refusals: string[] = []

  /**
   * `hostKey`: the target's host key as the operator verified it. OpenSSH (8.9+) puts the
   * server's host key into what it asks the agent to sign: a login to any other host is refused.
   */
  constructor(private readonly keys: ParsedKey[], private readonly user: string, private readonly hostKey?: Buffer, private readonly budget = 1) {
    super()
  }

  get signatures(): number {
    return this.signed
  }

  close(): void {
    this.closed = true
  }

  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    cb(undefined, this.closed ? [] : this.keys)
  }

  sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb?: (err: Error | undefined, signature?: Buffer) => void): void {
    const done = (typeof options === 'function' ? options : cb) as (err: Error | undefined, signature?: Buffer) => void
    const opts = (typeof options === 'object' && options ? options : {}) as { hash?: string }
    const refuse = (why: string) => {
      this.refusals.push(why)
      done(new Error(why))
    }
    if (this.closed) return refuse('the relay agent is closed (the copy ended)')
    if (this.signed >= this.budget) return refuse(`the relay agent already signed its ${this.budget} login(s)`)
    const key = this.keys.find((k) => k.getPublicSSH().equals(pubKey.getPublicSSH()))
    if (!key) return refuse('the relay agent holds no such key')
    const login = userauthRequest(data)
    if (login === undefined) return refuse('the relay agent signs SSH logins only')
    if (login.user !== this.user) return refuse(`the relay agent signs logins as ${this.user} only (asked for ${login.user})`)
    if (login.hostKey && this.hostKey && !login.hostKey.equals(this.hostKey)) return refuse('the relay agent signs logins to the relay target only (another host key)')
    const signature = key.sign(data, opts.hash)
    if (signature instanceof Error) return refuse(`signing failed: ${signature.message}`)
    this.signed++
    done(undefined, signature)
  }

  /**
   * The forwarded agent's channel: ssh2 pipes the host's agent requests into this.
   * The agent protocol (draft-miller-ssh-agent) is served here rather than by ssh2's
   * AgentProtocol, whose server side answers an unknown request without skipping
   * its body: OpenSSH's ssh sends `session-bind@openssh.com` first, and the key
   * list that follows was read as garbage ("agent refused operation"; the fix,
   * mscdex/ssh2#1493, is not released).
   */
  override getStream(cb: (err: Error | undefined, stream?: Duplex) => void): void {
    let buf = Buffer.alloc(0)
    const stream: Duplex = new PassThroughAgent((data) => {
      buf = Buffer.concat([buf, data])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const msg = buf.subarray(4, 4 + buf.readUInt32BE(0))
        buf = buf.subarray(4 + msg.length)
        this.answer(msg, (reply) => stream.push(frame(reply)))
      }
    })
    cb(undefined, stream)
  }

  private answer(msg: Buffer, reply: (body: Buffer) => void): void {
    const failure = () => reply(Buffer.from([SSH_AGENT_FAILURE]))
    if (msg[0] === SSH_AGENTC_REQUEST_IDENTITIES) {
      const keys = this.closed ? [] : this.keys
      return reply(Buffer.concat([Buffer.from([SSH_AGENT_IDENTITIES_ANSWER]), u32(keys.length),
        ...keys.flatMap((k) => [str(k.getPublicSSH()), str(Buffer.from(k.comment ?? ''))])]))
    }
    if (msg[0] !== SSH_AGENTC_SIGN_REQUEST) return failure()
    try {
      let p = 1
      const blob = msg.subarray(p + 4, p + 4 + msg.readUInt32BE(p))
      p += 4 + blob.length
      const data = msg.subarray(p + 4, p + 4 + msg.readUInt32BE(p))
      p += 4 + data.length
      const flags = msg.length >= p + 4 ? msg.readUInt32BE(p) : 0
      const key = this.keys.find((k) => k.getPublicSSH().equals(blob))
      if (!key) {
        this.refusals.push('the relay agent holds no such key')
        return failure()
      }
      const [format, hash] = key.type === 'ssh-rsa'
        ? (flags & SSH_AGENT_RSA_SHA2_512 ? ['rsa-sha2-512', 'sha512'] : flags & SSH_AGENT_RSA_SHA2_256 ? ['rsa-sha2-256', 'sha256'] : ['ssh-rsa', 'sha1'])
        : [key.type, undefined]
      this.sign(key, data, { hash }, (err, sig) => {
        if (err || !sig) return failure()
        reply(Buffer.concat([Buffer.from([SSH_AGENT_SIGN_RESPONSE]), str(Buffer.concat([str(Buffer.from(format)), str(sig)]))]))
      })
    } catch {
      failure()
    }
  }
}

const SSH_AGENT_FAILURE = 5
const SSH_AGENTC_REQUEST_IDENTITIES = 11
const SSH_AGENT_IDENTITIES_ANSWER = 12
const SSH_AGENTC_SIGN_REQUEST = 13
const SSH_AGENT_SIGN_RESPONSE = 14
const SSH_AGENT_RSA_SHA2_256 = 2
const SSH_AGENT_RSA_SHA2_512 = 4

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
const str = (b: Buffer) => Buffer.concat([u32(b.length), b])
const frame = (body: Buffer) => Buffer.concat([u32(body.length), body])

/** A duplex whose writes go to `onData` and whose reads are what it pushes. */
class PassThroughAgent extends Duplex {
  constructor(private readonly onData: (data: Buffer) => void) {
    super()
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.onData(chunk)
    cb()
  }
  override _final(cb: () => void): void {
    this.push(null)
    cb()
  }
}
