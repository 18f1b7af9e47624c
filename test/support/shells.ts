// The shells that are /bin/sh on the hosts etcd-rescue meets: dash (Debian,
// Ubuntu), bash as sh (RHEL and its kin, Fedora, Amazon Linux) and busybox sh
// (Alpine-based tooling), for tests that run a remote script for real.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// bash started as `sh` runs in POSIX mode, as /bin/sh on RHEL does. Under the
// test run's own temp dir (test/support/tmpdir.ts), removed when the run ends.
const bin = mkdtempSync(join(tmpdir(), 'shells-'))
symlinkSync('/usr/bin/bash', join(bin, 'sh'))

export const SHELLS: Array<[string, string[]]> = [['dash', ['dash']], ['bash as sh', [join(bin, 'sh')]], ['busybox sh', ['busybox', 'sh']]]

/** Whether this machine has the shell (busybox is installed by .ci/run; a developer's machine may lack it). */
export const available = (cmd: string[]) => spawnSync(cmd[0], [...cmd.slice(1), '-c', 'true']).status === 0
