import { describe, expect, it } from 'vitest'
import { InputError } from '../../lib/errors.ts'
import { hostDiskBacking, labDiskDir } from '../../lib/lab/paths.ts'
import {
  belongsToLab, bridgeName, hostName, memberName, netnsName, validateDiskSize, validateHostCount, validateLabName, vethName,
} from '../../lib/lab/names.ts'

describe('validateLabName', () => {
  it('accepts 1 to 8 lowercase letters and digits starting with a letter', () => {
    for (const ok of ['lab', 'a', 'drill2', 'abcdefgh']) expect(validateLabName(ok)).toBe(ok)
  })

  it('refuses anything that would not fit or not be safe in an interface name', () => {
    for (const bad of ['', 'abcdefghi', '1lab', 'Lab', 'my-lab', 'la b', 'lab;rm', 'é']) {
      expect(() => validateLabName(bad)).toThrow(InputError)
    }
  })

  it('keeps every derived interface name within Linux\'s 15 characters', () => {
    const longest = 'abcdefgh'
    for (const n of [bridgeName(longest), netnsName(longest, 9), vethName(longest, 9)]) expect(n.length).toBeLessThanOrEqual(15)
  })
})

describe('derived names', () => {
  it('names hosts, members and namespaces from the lab name', () => {
    expect(hostName('lab', 2)).toBe('lab-h2')
    expect(memberName(2)).toBe('etcd2')
    expect(netnsName('lab', 2)).toBe('er-lab-h2')
    expect(bridgeName('lab')).toBe('er-lab')
  })

  it('tells a lab\'s objects from another lab\'s with a longer name', () => {
    expect(belongsToLab('lab', 'er-lab')).toBe(true)
    expect(belongsToLab('lab', 'er-lab-h3')).toBe(true)
    expect(belongsToLab('lab', 'er-lab2')).toBe(false)
    expect(belongsToLab('lab', 'er-lab2-h1')).toBe(false)
    expect(belongsToLab('lab', 'eth0')).toBe(false)
  })
})

describe('validateHostCount / validateDiskSize', () => {
  it('accepts 1..9 hosts only', () => {
    expect(validateHostCount(1)).toBe(1)
    expect(validateHostCount(9)).toBe(9)
    for (const bad of [0, 10, -1, 2.5, Number.NaN]) expect(() => validateHostCount(bad)).toThrow(InputError)
  })

  it('accepts tmpfs sizes of at least 64M', () => {
    expect(validateDiskSize('2g')).toBe('2G')
    expect(validateDiskSize('512M')).toBe('512M')
    for (const bad of ['', '2 G', '10M', '1T', '-1G', 'lots']) expect(() => validateDiskSize(bad)).toThrow(InputError)
  })
})

describe('labDiskDir / hostDiskBacking (up --disk-dir)', () => {
  it('puts each lab in BASE/NAME and each host in hI under it', () => {
    expect(labDiskDir('/var/tmp/etcd-rescue-lab', 'bench1')).toBe('/var/tmp/etcd-rescue-lab/bench1')
    expect(hostDiskBacking('/var/tmp/etcd-rescue-lab/bench1', 3)).toBe('/var/tmp/etcd-rescue-lab/bench1/h3')
    expect(hostDiskBacking(undefined, 3)).toBeUndefined()
  })

  it('refuses a relative path or one that would need quoting', () => {
    expect(() => labDiskDir('var/tmp', 'lab')).toThrow(InputError)
    expect(() => labDiskDir('/var/my disks', 'lab')).toThrow(InputError)
  })
})
