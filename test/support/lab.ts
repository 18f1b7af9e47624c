// Shared by the end-to-end suites: a lab per suite under a random name in its
// own directory, always taken down in afterAll (even when a test failed), and
// small helpers that talk to the real hosts.
import { afterAll, beforeAll, expect } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { labDown, labUp, sshExec, type Lab, type LabUpOptions } from '../../lib/lab/index.ts'
import { directGateway } from '../../lib/etcd/gateway.ts'
import { LineUi, type Ui } from '../../lib/task/ui.ts'
import { trusted, type Script } from '../../lib/shell/sh.ts'
import type { Member } from '../../lib/inventory/members.ts'
import { HostPool, connectAll } from '../../lib/task/hosts.ts'
import { Journal } from '../../lib/task/journal.ts'
import { fingerprintHosts } from '../../lib/drill/fingerprint.ts'

export const randomName = () => `t${randomBytes(4).toString('hex').slice(0, 7)}`

export function useLab(options: { hosts: number } & Pick<LabUpOptions, 'etcd' | 'disk' | 'init' | 'tls' | 'sudo' | 'etcdRestart' | 'binSh'>) {
  const ctx = { name: randomName(), dir: '', lab: undefined as unknown as Lab }
  // The directory is made in beforeAll, so a suite filtered out leaves none behind.
  beforeAll(async () => {
    ctx.dir = mkdtempSync(join(tmpdir(), 'etcd-rescue-lab-test-'))
    ctx.lab = await labUp({ name: ctx.name, dir: ctx.dir, ...options })
  })
  afterAll(async () => {
    if (!ctx.dir) return
    await labDown({ name: ctx.name, dir: ctx.dir })
    rmSync(ctx.dir, { recursive: true, force: true })
  })
  return ctx
}

/** Runs a command on lab host `i` (1-based) over OpenSSH; fails the test on a non-zero exit. */
export async function onHost(lab: Lab, i: number, command: Script | string): Promise<string> {
  // A string here is the test's own script text, never a value from outside.
  const r = await sshExec(lab, i, typeof command === 'string' ? trusted(command) : command)
  expect(r.code, `${command} on host ${i}: ${r.stderr}`).toBe(0)
  return r.stdout
}

/** True when every host's /bin/sh is bash (a lab up with binSh: 'bash'; bash started as sh runs in POSIX mode, as on RHEL). */
export async function binShIsBash(lab: Lab): Promise<boolean> {
  const outs = await Promise.all(lab.state.hosts.map((h) => onHost(lab, h.index, 'readlink -f /bin/sh; sh -c \'echo "${BASH_VERSION:+bash}"\'')))
  return outs.every((o) => o === '/usr/bin/bash\nbash\n')
}

/** A JSON-gateway client straight to a member's client URL over the lab bridge. */
export const gateway = directGateway

/** A UI that keeps every line, for assertions and for failure messages. */
export function captureUi(): Ui & { text(): string } {
  let out = ''
  const ui = new LineUi({ write: (s: string) => ((out += s), true) } as never, 0)
  return Object.assign(ui, { text: () => out })
}

/** What a refused run must leave as it was on every member (lib/drill/fingerprint.ts), over fresh connections. */
export async function fingerprint(members: Member[]): Promise<string[]> {
  const pool = new HostPool()
  await connectAll(members, pool, captureUi(), new Journal(), {}, members.length)
  try {
    return await fingerprintHosts(members, pool)
  } finally {
    pool.closeAll()
  }
}
