// The systemd lab (`up --init systemd --tls`) against the real thing: systemd
// 252 as each host's PID 1, Debian's ssh.service, a sudo user, kubespray's
// etcd.service over TLS; and `down` leaving no process, cgroup, namespace or link.
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { labDown, sshExec } from '../../lib/lab/index.ts'
import { sh } from '../../lib/shell/sh.ts'
import { onHost, useLab } from '../support/lab.ts'

const CERTS = '/etc/ssl/etcd/ssl'

describe('systemd lab, TLS, password-asking sudo, etcd 3.5.30', () => {
  const ctx = useLab({ hosts: 3, init: 'systemd', tls: true, sudo: 'password', etcd: '3.5.30' })

  it('boots systemd as PID 1 on every host, each with its own machine-id, and only the units it should', async () => {
    const ids = new Set<string>()
    for (const h of ctx.lab.state.hosts) {
      const out = await onHost(ctx.lab, h.index, sh`cat /proc/1/comm; cat /etc/machine-id; systemctl is-system-running --wait; systemctl is-active ssh.service etcd.service; systemctl is-enabled postgresql.service etcd.service 2>&1 || true`)
      const [comm, id, running, ssh, etcd, postgres, etcdEnabled] = out.trim().split('\n')
      expect([comm, running, ssh, etcd]).toEqual(['systemd', 'running', 'active', 'active'])
      ids.add(id)
      // Units the machine enables stay off in the hosts; kubespray's etcd is enabled.
      expect([postgres, etcdEnabled]).toEqual(['disabled', 'enabled'])
    }
    expect(ids.size).toBe(3)
    // The host runs in its own cgroup below the machine's cgroup2 tree.
    const h1 = ctx.lab.state.hosts[0]
    expect(readFileSync(`${h1.cgroup}/cgroup.procs`, 'utf8')).not.toBe('')
  })

  it('lets ops in by key, refuses root, and sudo asks ops for a password', async () => {
    const { state, paths } = ctx.lab
    const h = state.hosts[0]
    const asOps = await sshExec(ctx.lab, 1, sh`id -un; sudo -n true`, { asRoot: false })
    expect(asOps.stdout.trim()).toBe('ops')
    expect(asOps.code).not.toBe(0)
    expect(asOps.stderr).toContain('a password is required')
    expect((await onHost(ctx.lab, 1, sh`id -u`)).trim()).toBe('0') // through sudo -S with the lab's password
    const root = await sshExec({ state: { ...state, systemd: undefined }, paths }, 1, sh`true`)
    expect(root.code).toBe(255)
    expect(root.stderr).toContain('Permission denied')
    // sshd as Debian ships it.
    const config = await onHost(ctx.lab, 1, sh`sshd -T -C user=ops,host=x,addr=${h.address} | grep -Ei '^(usepam|maxsessions|maxstartups|permitrootlogin) '`)
    expect(config.trim().split('\n').sort()).toEqual(['maxsessions 10', 'maxstartups 10:30:100', 'permitrootlogin no', 'usepam yes'])
  })

  it('runs kubespray\'s etcd.service as user etcd over TLS with client-cert auth', async () => {
    const { state } = ctx.lab
    const h = state.hosts[1]
    const out = await onHost(ctx.lab, 2, sh`systemctl show -p User,Restart,EnvironmentFiles etcd.service; stat -c '%U %a' /var/lib/etcd; ps -o user= -C etcd`)
    expect(out).toContain('User=etcd')
    expect(out).toContain('Restart=on-failure')
    expect(out).toContain('EnvironmentFiles=/etc/etcd.env')
    expect(out).toContain('etcd 700')
    expect(out.trim().split('\n').at(-1)).toBe('etcd')
    const ca = `${CERTS}/ca.pem`
    const cert = `${CERTS}/admin-${h.name}.pem`
    const key = `${CERTS}/admin-${h.name}-key.pem`
    const url = `https://${h.address}:2379`
    const members = await onHost(ctx.lab, 2, sh`ETCDCTL_API=3 etcdctl --endpoints=${url} --cacert=${ca} --cert=${cert} --key=${key} member list`)
    expect(members.trim().split('\n')).toHaveLength(3)
    expect(members).toContain(`https://${state.hosts[0].address}:2380`)
    // Without a client certificate the member refuses.
    const anon = await sshExec(ctx.lab, 2, sh`ETCDCTL_API=3 etcdctl --endpoints=${url} --cacert=${ca} --dial-timeout=3s --command-timeout=3s get x`)
    expect(anon.code).not.toBe(0)
    // Plain http is not served.
    const http = await sshExec(ctx.lab, 2, sh`ETCDCTL_API=3 etcdctl --endpoints=${`http://${h.address}:2379`} --dial-timeout=3s --command-timeout=3s get x`)
    expect(http.code).not.toBe(0)
  })

  it('writes a kubespray-shaped inventory with no etcd variable, reaching hosts as ops with become', () => {
    const { paths } = ctx.lab
    const inventory = JSON.parse(execFileSync('ansible-inventory', ['-i', paths.inventory, '--list'], { encoding: 'utf8' }))
    expect(inventory.etcd.hosts).toEqual(ctx.lab.state.hosts.map((h) => h.name))
    const vars = inventory._meta.hostvars[ctx.lab.state.hosts[0].name]
    expect(vars).toMatchObject({ ansible_user: 'ops', ansible_become: true, ip: ctx.lab.state.hosts[0].address })
    expect(Object.keys(vars).filter((k) => k.startsWith('etcd_'))).toEqual([])
  })

  it('down ends every host by its recorded PID 1 and removes every object', async () => {
    const { state } = ctx.lab
    const pids = state.hosts.flatMap((h) => [h.init!.pid, h.launcher!.pid])
    await labDown({ name: ctx.name, dir: ctx.dir })
    for (const pid of pids) expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false)
    for (const h of state.hosts) expect(existsSync(h.cgroup!)).toBe(false)
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    for (const h of state.hosts) {
      expect(netns).not.toContain(h.netns!)
      expect(links).not.toContain(`${h.veth!}@`)
    }
    expect(links).not.toContain(`${state.bridge}:`)
    expect(existsSync(ctx.lab.paths.state)).toBe(false)
    expect(existsSync(ctx.lab.paths.pki)).toBe(false)
    expect(existsSync(ctx.lab.paths.groupVars)).toBe(false)
    expect(existsSync(ctx.lab.paths.dir)).toBe(false)
  })
})
