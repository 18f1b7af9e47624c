import { describe, expect, it } from 'vitest'
import { InputError } from '../../lib/errors.ts'
import { checkPrerequisites, missingPrograms } from '../../lib/lab/prereq.ts'

const has = (missing: string[]) => (program: string) => (missing.includes(program) ? undefined : `/usr/bin/${program}`)

describe('checkPrerequisites', () => {
  it('refuses a user other than root before looking at anything else', () => {
    expect(() => checkPrerequisites({ etcd34: true, fetch: false, uid: 1000, find: has([]) })).toThrow(/needs root/)
  })

  it('names the missing programs and the apt-get command that brings them', () => {
    let error: unknown
    try {
      checkPrerequisites({ etcd34: true, fetch: false, uid: 0, find: has(['tini', 'sshd', 'etcdctl']) })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toBe('missing tini, sshd, etcdctl')
    expect((error as InputError).hint).toBe('Install them: apt-get install -y tini openssh-server etcd-client')
  })

  it('needs the 3.4 package only for a 3.4 lab, and apt-get/dpkg-deb only to fetch 3.5', () => {
    expect(missingPrograms({ etcd34: false, fetch: true, find: has(['etcd', 'etcdctl']) })).toEqual([])
    expect(missingPrograms({ etcd34: false, fetch: true, find: has(['dpkg-deb']) })).toEqual([['dpkg-deb', 'dpkg']])
  })
})
