// Every name the lab gives the machine derives from the lab name, so that `down`
// and the clash check can tell this lab's objects from anything else's.
// Linux caps interface names at 15 characters: "er-" + 8 + "-h9" = 14.
import { InputError } from '../errors.ts'

export const LAB_NAME_RE = /^[a-z][a-z0-9]{0,7}$/
export const DEFAULT_LAB_NAME = 'lab'
export const MAX_HOSTS = 9
/** Where etcd keeps its data on every lab host (kubespray's default too). */
export const LAB_DATA_DIR = '/var/lib/etcd'

export function validateLabName(name: string): string {
  if (!LAB_NAME_RE.test(name)) {
    throw new InputError(`invalid lab name ${JSON.stringify(name)}`, {
      hint: 'Use 1 to 8 characters: a lowercase letter, then lowercase letters or digits (it becomes part of interface names, which Linux caps at 15 characters).',
    })
  }
  return name
}

export function validateHostCount(hosts: number): number {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS) {
    throw new InputError(`--hosts must be a whole number from 1 to ${MAX_HOSTS}, got ${hosts}`)
  }
  return hosts
}

/** tmpfs size syntax: a number with an optional k/m/g suffix, at least 64 MiB. */
export function validateDiskSize(size: string): string {
  const m = /^(\d+)([kmg]?)$/i.exec(size)
  const unit = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }[(m?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g']
  if (!m || Number(m[1]) * unit < 64 * (1 << 20)) {
    throw new InputError(`invalid --disk ${JSON.stringify(size)}`, { hint: 'Give a size like 512M or 2G (at least 64M).' })
  }
  return size.toUpperCase()
}

/** The bridge in the root namespace that joins the lab's hosts. */
export function bridgeName(lab: string): string {
  return `er-${lab}`
}

/** The ifb device that carries the hosts-to-operator direction of a shaped link (`shape --link`). */
export function ifbName(lab: string): string {
  return `er-${lab}-in`
}

/** Network namespace of host i (1-based). */
export function netnsName(lab: string, i: number): string {
  return `er-${lab}-h${i}`
}

/** Root-namespace end of host i's veth pair (the other end is eth0 in the host). */
export function vethName(lab: string, i: number): string {
  return `er-${lab}-h${i}`
}

/** Host name, inventory name and /etc/hostname of host i. */
export function hostName(lab: string, i: number): string {
  return `${lab}-h${i}`
}

/** etcd member name of host i, set explicitly in the inventory (etcd_member_name). */
export function memberName(i: number): string {
  return `etcd${i}`
}

/** Does a netns or link name belong to a lab of this name? */
export function belongsToLab(lab: string, objectName: string): boolean {
  return objectName === bridgeName(lab) || objectName === ifbName(lab) || new RegExp(`^er-${lab}-h[0-9]+$`).test(objectName)
}
