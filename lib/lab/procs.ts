// Processes the lab started, tracked by PID plus start time: a PID alone may
// have been recycled by the time `down` runs, and `down` must kill only its own.
import { readFileSync } from 'node:fs'
import type { ProcessRef } from './state.ts'

function readStat(pid: number): { state: string; startTime: number } | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { state: rest[0], startTime: Number(rest[19]) }
}

export function processRef(pid: number): ProcessRef | undefined {
  const s = readStat(pid)
  return s && { pid, startTime: s.startTime }
}

/** Still the same process, and not a zombie waiting to be reaped. */
export function isRunning(ref: ProcessRef | undefined): boolean {
  if (!ref) return false
  const s = readStat(ref.pid)
  return !!s && s.startTime === ref.startTime && s.state !== 'Z'
}

/** Direct children of a (single-threaded) process, as the root namespace numbers them. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** SIGKILL the process if it is still the recorded one. Returns whether a signal was sent. */
export function killRef(ref: ProcessRef | undefined): boolean {
  if (!isRunning(ref)) return false
  try {
    process.kill(ref!.pid, 'SIGKILL')
    return true
  } catch {
    return false
  }
}

/** Wait (bounded) until none of the processes runs. Returns those still running. */
export async function waitGone(refs: Array<ProcessRef | undefined>, timeoutMs = 5000): Promise<ProcessRef[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = refs.filter(isRunning) as ProcessRef[]
    if (left.length === 0 || Date.now() > deadline) return left
    await new Promise((r) => setTimeout(r, 20))
  }
}
