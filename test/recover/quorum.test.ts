import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:http'
import { createServer as createH2Server, type Http2Server } from 'node:http2'
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net'
import { grpcFrame } from '../../lib/etcd/grpc.ts'
import { readFields, varint } from '../../lib/etcd/protobuf.ts'
import { everyoneHealthy, nextProbeAfter, NOT_ASKED, observe, POLL, waitForQuorum } from '../../lib/recover/quorum.ts'
import { verifyCluster, type RemoteHost } from '../../lib/recover/verify.ts'
import { Journal } from '../../lib/task/journal.ts'
import { silentUi } from '../../lib/task/ui.ts'
import type { Script } from '../../lib/shell/sh.ts'
import { threeMemberPlan } from '../support/plan.ts'

describe('observe: when a member counts as healthy', () => {
  const healthy = observe(NOT_ASKED, { kind: 'healthy' }, 0)

  it('counts a healthy answer at once, and an unhealthy answer revokes it', () => {
    expect(healthy.healthy).toBe(true)
    const no = observe(healthy, { kind: 'unhealthy', reason: 'RAFT NO LEADER' }, 10)
    expect(no).toEqual({ healthy: false, last: 'unhealthy: RAFT NO LEADER' })
  })

  it('does not forget a healthy member because a probe timed out', () => {
    const once = observe(healthy, { kind: 'silent', reason: '/health timed out after 3000 ms' }, 1000)
    expect(once.healthy).toBe(true)
    const again = observe(once, { kind: 'silent', reason: 'timed out' }, 1000 + POLL.forgetSilentMs - 1)
    expect(again.healthy).toBe(true)
    // An answer ends the silence: the next timeout starts a new one.
    const back = observe(observe(again, { kind: 'healthy' }, 1000 + POLL.forgetSilentMs), { kind: 'silent', reason: 't' }, 1000 + 2 * POLL.forgetSilentMs)
    expect(back.healthy).toBe(true)
  })

  it('forgets a healthy member silent for a long while, saying so', () => {
    const once = observe(healthy, { kind: 'silent', reason: 'refused' }, 1000)
    const gone = observe(once, { kind: 'silent', reason: 'refused' }, 1000 + POLL.forgetSilentMs)
    expect(gone.healthy).toBe(false)
    expect(gone.last).toBe(`no answer for ${POLL.forgetSilentMs / 1000} s after it was healthy: refused`)
  })

  it('a member never healthy stays waiting, with the reason it gave', () => {
    expect(observe(NOT_ASKED, { kind: 'silent', reason: 'connect ECONNREFUSED' }, 5)).toEqual({ healthy: false, last: 'no answer: connect ECONNREFUSED' })
  })

  it('asks a waiting member often and a healthy one seldom; the wait is over when every member is healthy', () => {
    expect(nextProbeAfter(NOT_ASKED)).toBeLessThan(250)
    expect(nextProbeAfter(healthy)).toBeGreaterThan(nextProbeAfter(NOT_ASKED))
    expect(everyoneHealthy([healthy, healthy])).toBe(true)
    expect(everyoneHealthy([healthy, NOT_ASKED])).toBe(false)
  })
})

// The wait itself, against three fake members: each an HTTP server answering
// /health and status as etcd does, reached through the fake host's forward().
const plan = threeMemberPlan('3.5.30')

type Mode = 'healthy' | 'unhealthy' | 'hang' | 'down'
interface FakeMember {
  host: RemoteHost
  mode: Mode
  requests: string[]
  commands: string[]
  /** The revision of each HashKV asked over gRPC. */
  hashKvRevisions: number[]
}

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
  Object.assign(POLL, saved)
})
const saved = { ...POLL }

async function fakeMember(index: number, mode: Mode): Promise<FakeMember> {
  const m = plan.members[index]
  const f: FakeMember = { mode, requests: [], commands: [], hashKvRevisions: [], host: undefined as never }
  const server = createServer((req, res) => {
    f.requests.push(req.url ?? '')
    if (f.mode === 'hang') return
    if (req.url === '/health') {
      const ok = f.mode === 'healthy'
      res.writeHead(ok ? 200 : 503).end(JSON.stringify(ok ? { health: 'true', reason: '' } : { health: 'false', reason: 'RAFT NO LEADER' }))
      return
    }
    req.resume()
    req.on('end', () => res.writeHead(200).end(JSON.stringify({
      header: { cluster_id: plan.clusterId, member_id: m.memberId, revision: '120', raft_term: '2' },
      leader: plan.members[0].memberId, version: '3.5.30', dbSize: '1', errors: [],
    })))
  })
  server.keepAliveTimeout = 1
  // gRPC (HTTP/2 without TLS) on the same port, as etcd's client port serves both: HashKV only.
  const h2: Http2Server = createH2Server()
  h2.on('stream', (stream, headers) => {
    f.requests.push(String(headers[':path']))
    const body: Buffer[] = []
    stream.on('data', (c: Buffer) => body.push(c))
    stream.on('end', () => {
      const rev = readFields(Buffer.concat(body).subarray(5)).get(1) as bigint
      f.hashKvRevisions.push(Number(rev))
      const header = Buffer.concat([Buffer.from([0x18]), varint(120n)])
      const answer = Buffer.concat([Buffer.from([0x0a, header.length]), header, Buffer.from([0x10]), varint(42n), Buffer.from([0x18]), varint(-1n)])
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(grpcFrame(answer))
    })
  })
  // What cmux does for etcd: a connection that opens with HTTP/2's preface goes to gRPC
  // (passed on to the server that speaks it, through a pipe: http2 reads its socket natively).
  servers.push(server, h2 as never)
  const listen = (x: Server | Http2Server) => new Promise<number>((r) => x.listen(0, '127.0.0.1', () => r((x.address() as AddressInfo).port)))
  const [h1Port, h2Port] = [await listen(server), await listen(h2)]
  const front = createTcpServer((sock) => {
    sock.on('error', () => {})
    sock.once('data', (first: Buffer) => {
      const back = connect(first.subarray(0, 3).toString() === 'PRI' ? h2Port : h1Port, '127.0.0.1')
      back.on('error', () => sock.destroy())
      back.write(first)
      sock.pipe(back).pipe(sock)
    })
  })
  servers.push(front as never)
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()))
  const port = (front.address() as AddressInfo).port
  f.host = {
    name: m.name,
    async forward() {
      if (f.mode === 'down') throw new Error('cannot reach 10.0.0.1:2379 from this host: Connection refused')
      const s = connect(port, '127.0.0.1')
      await new Promise((r, j) => s.once('connect', r).once('error', j))
      return s as never
    },
    async exec(script: Script) {
      f.commands.push(script.text)
      return { code: 0, stdout: 'log line\n', stderr: '' }
    },
  }
  return f
}

const hostsOf = (fs: FakeMember[]) => new Map(fs.map((f) => [f.host.name, f.host]))

describe('waitForQuorum', () => {
  it('ends when every member answered healthy, starts no command on any host, reads each status once', async () => {
    const fs = await Promise.all([0, 1, 2].map((i) => fakeMember(i, i === 2 ? 'unhealthy' : 'healthy')))
    setTimeout(() => { fs[2].mode = 'healthy' }, 600)
    const q = await waitForQuorum(plan, hostsOf(fs), { ui: silentUi(), timeoutMs: 20_000 }, new Journal())
    expect(q.failed).toEqual([])
    for (const f of fs) {
      expect(f.commands).toEqual([])
      expect(f.requests.filter((r) => r === '/v3/maintenance/status')).toHaveLength(1)
    }
    // The healthy members were not asked at the waiting member's pace.
    expect(fs[0].requests.filter((r) => r === '/health').length).toBeLessThan(fs[2].requests.filter((r) => r === '/health').length)
    expect([...q.view.values()].map((v) => [v.healthy, v.status?.revision])).toEqual([[true, 120], [true, 120], [true, 120]])
  }, 30_000)

  it('does not forget a member that answered healthy and then timed out', async () => {
    POLL.timeoutMs = 300
    const fs = await Promise.all([0, 1, 2].map((i) => fakeMember(i, i === 2 ? 'down' : 'healthy')))
    // etcd1 answers healthy, then hangs; the quorum forms later, when etcd3 comes up.
    setTimeout(() => { fs[0].mode = 'hang' }, 100)
    setTimeout(() => { fs[2].mode = 'healthy' }, 2000)
    const q = await waitForQuorum(plan, hostsOf(fs), { ui: silentUi(), timeoutMs: 20_000 }, new Journal())
    expect(q.failed).toEqual([])
    expect(q.view.get('etcd1')?.healthy).toBe(true)
    // It was asked again while hanging (and did not answer) before the quorum formed.
    expect(fs[0].requests.filter((r) => r === '/health').length).toBeGreaterThan(1)
  }, 30_000)

  it('names a member that never became healthy, how (its last answer), and its log; the others are healthy', async () => {
    const fs = await Promise.all([0, 1, 2].map((i) => fakeMember(i, i === 1 ? 'unhealthy' : 'healthy')))
    const q = await waitForQuorum(plan, hostsOf(fs), { ui: silentUi(), timeoutMs: 1500 }, new Journal())
    expect(q.failed.map((f) => f.host)).toEqual(['etcd2'])
    const message = String((q.failed[0].error as Error).message)
    expect(message).toContain('not healthy (unhealthy: RAFT NO LEADER)')
    expect(message).toContain('last log lines:\n    log line')
    expect(fs[1].commands).toHaveLength(1)
  }, 30_000)
})

describe('verifyCluster after the wait', () => {
  it("reuses each member's health and status; asks hashkv over gRPC, once per member; starts no command", async () => {
    const fs = await Promise.all([0, 1, 2].map((i) => fakeMember(i, 'healthy')))
    const hosts = hostsOf(fs)
    const q = await waitForQuorum(plan, hosts, { ui: silentUi(), timeoutMs: 20_000 }, new Journal())
    const before = fs.map((f) => f.requests.length)
    const { checks, evidence } = await verifyCluster(plan, hosts, 100, q.view)
    expect(checks.filter((c) => !c.ok && c.name !== 'member-list')).toEqual([])
    expect(evidence.hashes).toEqual({ etcd1: '42', etcd2: '42', etcd3: '42' })
    for (const [i, f] of fs.entries()) {
      expect(f.commands).toEqual([])
      expect(f.hashKvRevisions).toEqual([120])
      // No health or status read again: only the member list and alarms, from one member.
      expect(f.requests.slice(before[i]).filter((r) => r === '/health' || r === '/v3/maintenance/status')).toEqual([])
    }
  })
})
