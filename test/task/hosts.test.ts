// Connecting early (lib/task/hosts.ts startConnecting): the SSH handshakes start
// while the snapshot is still being checked, and a connection still being made
// when the run ends is given up at once, not left to its timeout. Against a
// loopback server that accepts TCP and never says a word (a host whose sshd hangs).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { HostPool, startConnecting } from '../../lib/task/hosts.ts'
import type { Member } from '../../lib/inventory/members.ts'

const ROOT = join(import.meta.dirname, '..', '..')

/** A TCP server that accepts and stays silent; records each connection and when it closed. */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Array<{ socket: Socket; closed: Promise<void> }> }> {
  const sockets: Array<{ socket: Socket; closed: Promise<void> }> = []
  const server = createServer((socket) => {
    sockets.push({ socket, closed: new Promise((resolve) => socket.on('close', () => resolve())) })
    socket.on('error', () => {})
    // Reads (and drops) what the client says, so that its end is seen; answers nothing.
    socket.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port, sockets }
}

let open: Server[] = []
afterEach(() => {
  open.forEach((s) => s.close())
  open = []
})

describe('startConnecting', () => {
  it('gives up a connection still being made when the pool is closed, before its timeout', async () => {
    const { server, port, sockets } = await silentServer()
    open.push(server)
    const member = { name: 'etcd1', ssh: { host: '127.0.0.1', port, user: 'root' } } as unknown as Member
    const pool = new HostPool()
    const started = startConnecting([member], pool, { connectTimeoutMs: 600_000 }, 1)
    await expect.poll(() => sockets.length).toBe(1)
    pool.closeAll()
    await expect(started.get('etcd1')).rejects.toThrow(/given up: the run ended first/)
    await sockets[0].closed
    expect(pool.hosts.size).toBe(0)
  })
})

describe('a recovery whose snapshot is refused while a host is still connecting', () => {
  it('says what is wrong with the snapshot and exits, leaving no connection behind', { timeout: 90_000 }, async () => {
    const { server, port, sockets } = await silentServer()
    open.push(server)
    const dir = mkdtempSync(join(tmpdir(), 'early-connect-'))
    try {
      const inventory = join(dir, 'hosts.ini')
      writeFileSync(inventory, `[etcd]\netcd1 ansible_host=127.0.0.1 ansible_port=${port} ansible_user=root\n`)
      const snapshot = join(dir, 'not-a-snapshot.db')
      writeFileSync(snapshot, Buffer.alloc(64 * 1024, 7))
      // The connect timeout is far longer than the test's: a connection left to it would hold the run open.
      const child = spawn(process.execPath, [join(ROOT, 'scripts/recover.mjs'), '--inventory', inventory, '--snapshot', snapshot, '--yes', '--plain', '--connect-timeout', '600'], {
        cwd: dir, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (out += d))
      const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve)).finally(() => clearTimeout(guard))
      expect(code, out).toBe(2)
      expect(out).toMatch(/not-a-snapshot\.db/)
      // It had begun connecting (the host got a TCP connection), and let go of it on the way out.
      expect(sockets.length).toBe(1)
      await sockets[0].closed
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
