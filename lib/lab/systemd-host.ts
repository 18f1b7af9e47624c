// What a systemd lab host gets on top of the common boot (init-script.ts): a host
// that looks like a kubespray-built machine. systemd 252 as PID 1 brings up
// journald, dbus, logind and Debian's ssh.service with Debian's default
// sshd_config (UsePAM yes, MaxSessions 10, MaxStartups 10:30:100), root login
// over SSH turned off; the operator logs in as `ops` and becomes root with sudo,
// with or without a password; etcd runs as user etcd from kubespray's
// etcd.service and /etc/etcd.env, optionally with kubespray's TLS layout.
//
// The overlay's lower layer is this machine's /, so its enabled units (postgres,
// Debian's own etcd.service, timers, getty) would start too: every .wants link
// in /etc/systemd/system is removed and only ssh and etcd are enabled
// (FIELD-NOTES, "systemd as a lab host's PID 1").
import { sh, joinScripts, type Script } from '../shell/sh.ts'
import { ETCD_ENV_PATH, ETCD_UNIT_PATH, KUBESPRAY_BIN_DIR } from './kubespray-etcd.ts'
import { KUBESPRAY_CERT_DIR } from './tls.ts'

/** The login user of a systemd lab host. */
export const LAB_LOGIN_USER = 'ops'
/** The user etcd.service runs as. */
export const LAB_ETCD_USER = 'etcd'
/** Debian's pristine sshd_config, as the openssh-server package installs it. */
export const DEBIAN_SSHD_CONFIG = '/usr/share/openssh/sshd_config'

export type SudoMode = 'nopasswd' | 'password'

export interface SystemdHostSpec {
  /** Files on the machine holding this host's etcd.service, etcd.env, sshd drop-in. */
  unitFile: string
  envFile: string
  sshdDropIn: string
  /** The operator's public key, for ops's authorized_keys. */
  publicKey: string
  sudo: SudoMode
  /** ops's password (both modes get one; only `password` sudo asks for it). */
  password: string
  /** Files for /etc/ssl/etcd/ssl: machine path → name in the cert dir. Empty: no TLS. */
  certs: ReadonlyArray<{ from: string; name: string }>
  /** etcd binaries on the machine to install in /usr/local/bin. */
  etcdBinaries: ReadonlyArray<{ from: string; name: string }>
  dataDir: string
}

/** sshd drop-in: Debian's config stays as shipped; only root login is turned off. */
export function sshdDropIn(): string {
  return '# etcd-rescue lab: operators log in as ops and use sudo\nPermitRootLogin no\n'
}

/**
 * Runs in the init script with "$R" the host's root, before pivot_root: users,
 * files, enabled units. Everything it writes lands in the host's overlay.
 */
export function systemdHostSetup(spec: SystemdHostSpec): Script {
  const u = LAB_LOGIN_USER
  const sudoers = spec.sudo === 'nopasswd' ? `${u} ALL=(ALL:ALL) NOPASSWD: ALL\n` : `${u} ALL=(ALL:ALL) ALL\n`
  const steps: Script[] = [
    sh`# Only ssh and etcd start at boot, not what the machine enables.`,
    sh`rm -rf "$R"/etc/systemd/system/*.wants "$R"/etc/systemd/system/*.requires`,
    sh`mkdir -p "$R/etc/systemd/system/multi-user.target.wants"`,
    sh`ln -s /lib/systemd/system/ssh.service "$R/etc/systemd/system/multi-user.target.wants/ssh.service"`,
    sh`UNIT=${ETCD_UNIT_PATH}`,
    sh`ln -s "$UNIT" "$R/etc/systemd/system/multi-user.target.wants/etcd.service"`,
    sh`rm -f "$R/var/lib/dbus/machine-id"`,
    sh`# sshd as Debian ships it, plus PermitRootLogin no.`,
    sh`rm -rf "$R/etc/ssh/sshd_config.d" "$R/etc/ssh/sshd_not_to_be_run"`,
    sh`mkdir -p "$R/etc/ssh/sshd_config.d"`,
    sh`install -m 0644 ${DEBIAN_SSHD_CONFIG} "$R/etc/ssh/sshd_config"`,
    sh`install -m 0644 ${spec.sshdDropIn} "$R/etc/ssh/sshd_config.d/etcd-rescue-lab.conf"`,
    sh`# Users: etcd (Debian's etcd package may have made it already), ops with sudo.`,
    sh`chroot "$R" sh -c 'id -u etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd --no-create-home --shell /usr/sbin/nologin etcd'`,
    sh`chroot "$R" useradd --create-home --shell /bin/bash --groups sudo ${u}`,
    sh`PW=${`${u}:${spec.password}`}`,
    sh`printf '%s\\n' "$PW" | chroot "$R" chpasswd`,
    sh`SUDOERS=${sudoers}`,
    sh`printf '%s' "$SUDOERS" >"$R/etc/sudoers.d/etcd-rescue-lab"`,
    sh`chmod 0440 "$R/etc/sudoers.d/etcd-rescue-lab"`,
    sh`H="$R/home/"${u}`,
    sh`install -d -m 0700 "$H/.ssh"`,
    sh`install -m 0600 ${spec.publicKey} "$H/.ssh/authorized_keys"`,
    sh`chroot "$R" chown -R ${u}: ${`/home/${u}/.ssh`}`,
    sh`# etcd as kubespray installs it: /usr/local/bin, etcd.env, etcd.service, data 0700 etcd.`,
    sh`rm -f "$R/usr/bin/etcd" "$R/usr/bin/etcdctl" "$R/usr/bin/etcdutl"`,
    ...spec.etcdBinaries.map((b) => sh`install -D -m 0755 ${b.from} "$R"${`${KUBESPRAY_BIN_DIR}/${b.name}`}`),
    sh`install -m 0644 ${spec.envFile} "$R"${ETCD_ENV_PATH}`,
    sh`install -m 0644 ${spec.unitFile} "$R"${ETCD_UNIT_PATH}`,
    sh`DATA=${spec.dataDir}`,
    sh`rm -rf "$R$DATA"`,
    sh`install -d -m 0700 "$R$DATA"`,
    sh`chroot "$R" chown etcd:etcd "$DATA"`,
  ]
  if (spec.certs.length > 0) {
    steps.push(
      sh`CERTS=${KUBESPRAY_CERT_DIR}`,
      sh`install -d -m 0700 "$R$CERTS"`,
      ...spec.certs.map((c) => sh`install -m 0640 ${c.from} "$R$CERTS"/${c.name}`),
      sh`chroot "$R" chown -R etcd:root "$CERTS"`,
    )
  }
  return joinScripts(steps)
}
