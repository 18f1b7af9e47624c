import { describe, expect, it } from 'vitest'
import { BecomeWatcher } from '../../lib/ssh/become.ts'

const PROMPT = 'etcd-rescue-sudo-prompt-0123:'
const OK = 'etcd-rescue-become-ok-4567'

function watcher() {
  const log = { sent: 0, gaveUp: 0, ready: 0, out: '', err: '' }
  const w = new BecomeWatcher(PROMPT, OK, {
    sendPassword: () => log.sent++,
    giveUp: () => log.gaveUp++,
    ready: () => log.ready++,
    stdout: (d) => (log.out += d.toString()),
    stderr: (d) => (log.err += d.toString()),
  })
  return { w, log }
}

describe('the sudo -S conversation (-K)', () => {
  it('answers the prompt once, even split across chunks, and holds stdout until the success line', () => {
    const { w, log } = watcher()
    w.stderr(Buffer.from(PROMPT.slice(0, 10)))
    expect(log.sent).toBe(0)
    w.stderr(Buffer.from(PROMPT.slice(10)))
    expect(log.sent).toBe(1)
    expect(log.err).toBe('')
    w.stdout(Buffer.from(`${OK.slice(0, 5)}`))
    expect(log.ready).toBe(0)
    w.stdout(Buffer.from(`${OK.slice(5)}\nfirst line of the command\n`))
    expect(log.ready).toBe(1)
    expect(log.out).toBe('first line of the command\n')
    w.stderr(Buffer.from('the command\'s own stderr\n'))
    expect(log.err).toBe('the command\'s own stderr\n')
  })

  it('is ready without a prompt when sudo does not ask', () => {
    const { w, log } = watcher()
    w.stdout(Buffer.from(`${OK}\n`))
    expect([log.sent, log.ready, log.out]).toEqual([0, 1, ''])
  })

  it('gives up on a second prompt (wrong password) and never becomes ready', () => {
    const { w, log } = watcher()
    w.stderr(Buffer.from(PROMPT))
    w.stderr(Buffer.from(`Sorry, try again.\n${PROMPT}`))
    w.flush()
    expect([log.sent, log.gaveUp, log.ready]).toEqual([1, 1, 0])
    expect(log.err).toBe('Sorry, try again.\n')
    expect(w.accepted).toBe(false)
  })

  it('hands on what sudo printed when it refused outright', () => {
    const { w, log } = watcher()
    w.stderr(Buffer.from('ops is not in the sudoers file.\n'))
    w.flush()
    expect(log.err).toBe('ops is not in the sudoers file.\n')
    expect(log.ready).toBe(0)
  })
})
