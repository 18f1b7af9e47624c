// What a refused run must leave exactly as it was on every member host: the
// listing of the data dir and of its parent (no work dir, no set-aside data),
// the work dir's files and journal (a copy taken back leaves no file and no line), and
// the PIDs of the member's running etcd.
import { posix } from 'node:path'
import type { Member } from '../inventory/members.ts'
import { findPidsScript } from '../etcd/process.ts'
import { memberPorts } from '../plan/recovery.ts'
import { memberPaths } from '../plan/paths.ts'
import { sh } from '../shell/sh.ts'
import type { HostPool } from '../task/hosts.ts'

export async function fingerprintHosts(members: Member[], pool: HostPool): Promise<string[]> {
  return Promise.all(members.map(async (m) => {
    const parent = posix.dirname(m.dataDir.replace(/\/+$/, ''))
    const work = memberPaths(m.dataDir, '0'.repeat(64), '', '', false).work
    const r = await pool.get(m.name).exec(sh`ls -A ${parent}; echo --; ls -A ${m.dataDir}; echo --; ls -A ${work} 2>/dev/null; cat ${work}/state 2>/dev/null; echo --; { ${findPidsScript(m.dataDir, memberPorts(m))}
} | sort`)
    return `${m.name}:${r.stdout}`
  }))
}
