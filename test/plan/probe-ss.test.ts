// Preflight's look at who listens on a member's ports, with an `ss` that has no
// -H (iproute 3.10, CentOS 7.0-7.3), run for real under each /bin/sh etcd-rescue
// meets: a stand-in ss on PATH refuses -H as that one does and prints its header.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFacts, probeScript } from '../../lib/plan/facts.ts'
import { SHELLS, available } from '../support/shells.ts'

function host(ssHasH: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'probe-ss-'))
  const tools = join(dir, 'bin')
  mkdirSync(tools)
  writeFileSync(join(tools, 'ss'), `#!/bin/sh
echo "$*" >> ${dir}/calls
case "$1" in
  -H*) ${ssHasH ? '' : `echo "ss: invalid option -- 'H'" >&2; echo 'Usage: ss [ OPTIONS ]' >&2; exit 255`} ;;
  *) echo 'State      Recv-Q Send-Q Local Address:Port               Peer Address:Port' ;;
esac
echo 'LISTEN     0      128    198.18.7.11:65011                    *:*                   users:(("nginx",pid=4242,fd=6))'
`)
  chmodSync(join(tools, 'ss'), 0o755)
  const script = probeScript({
    dataDir: join(dir, 'etcd'), work: join(dir, '.etcd-rescue-etcd'), snapshot: join(dir, 'x.db'), snapshotSize: 1, snapshotSha: 'a'.repeat(64),
    ports: [65010, 65011], service: 'process', serviceName: 'etcd',
  })
  return { dir, tools, script }
}

describe.each(SHELLS)('the probe\'s listeners, under %s', (_name, shell) => {
  it.skipIf(!available(shell))('are read with ss -H, and where ss has no -H, without it and its header', () => {
    for (const hasH of [true, false]) {
      const h = host(hasH)
      const r = spawnSync(shell[0], [...shell.slice(1), '-c', h.script.text], { encoding: 'utf8', env: { ...process.env, PATH: `${h.tools}:${process.env.PATH}` } })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout.split('\n').filter((l) => l.startsWith('listen=')), `ss with -H: ${hasH}`).toEqual([
        'listen=LISTEN     0      128    198.18.7.11:65011                    *:*                   users:(("nginx",pid=4242,fd=6))',
      ])
      expect(parseFacts(r.stdout).listeners).toEqual([{ address: '198.18.7.11', port: 65011, comm: 'nginx', pid: 4242 }])
    }
  })
})
