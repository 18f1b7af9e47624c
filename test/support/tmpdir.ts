// Every temporary file a test run makes goes under one directory of its own,
// removed when the run ends, whatever the tests did: TMPDIR is set before the
// test workers start, and os.tmpdir() follows it.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'

export default function setup() {
  const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'etcd-rescue-tests-'))
  // Like /tmp itself: some tests run tools as an unprivileged user, which need a temp dir too.
  chmodSync(dir, 0o1777)
  process.env.TMPDIR = dir
  return () => rmSync(dir, { recursive: true, force: true })
}
