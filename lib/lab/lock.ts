// A lock file (O_EXCL create holding the owner's PID) serializing what two
// concurrent `up`s must not interleave: choosing a subnet and claiming it by
// creating the bridge, or working on the same lab. A lock whose owner process
// is gone is stale and taken over.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { RescueError } from '../errors.ts'

function ownerAlive(path: string): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(path, 'utf8').trim())
  } catch {
    return true // being written right now
  }
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      if (!ownerAlive(path)) {
        rmSync(path, { force: true })
        continue
      }
      if (Date.now() > deadline) throw new RescueError(`timed out waiting for the lock ${path}`, { hint: 'Another lab command is running; wait for it or remove the file if it is stale.' })
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  try {
    return await fn()
  } finally {
    rmSync(path, { force: true })
  }
}
