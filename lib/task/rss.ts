// This process's own peak resident memory. getrusage's ru_maxrss (Node's
// process.resourceUsage().maxRSS) is the wrong number for a process started by a
// larger one: Linux copies the parent's memory high-water mark at fork and keeps
// it across exec, so a child of a 300 MiB parent reports at least 300 MiB (seen
// with the bench, whose own memory showed up as etcd-rescue's). /proc/self/status's
// VmHWM is the high-water mark of this process's address space, made at exec.
import { readFileSync } from 'node:fs'

/** VmHWM from a /proc/PID/status text, in bytes; undefined if absent. */
export function parseVmHwm(status: string): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status)
  return m ? Number(m[1]) * 1024 : undefined
}

/** This process's peak RSS in bytes: VmHWM where /proc has it, else ru_maxrss (an upper bound). */
export function ownPeakRssBytes(): number {
  try {
    const hwm = parseVmHwm(readFileSync('/proc/self/status', 'utf8'))
    if (hwm !== undefined) return hwm
  } catch {
    // not Linux, or no /proc
  }
  return process.resourceUsage().maxRSS * 1024
}
