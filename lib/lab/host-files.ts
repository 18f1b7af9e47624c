// Text of the files that make a lab host look like its own machine: its sshd
// configuration, /etc/hostname, /etc/hosts. Pure, so they are unit-tested.

export interface LabHostIdentity {
  name: string
  address: string
}

/** Where each host's sshd reads its configuration (a file of our own, next to Debian's). */
export const SSHD_CONFIG_PATH = '/etc/ssh/sshd_config_lab'

/**
 * sshd for a host: only its own address, only its own ed25519 key, root by key
 * only. UsePAM no: PAM's session modules (loginuid, systemd) fail in a namespace
 * with no systemd. MaxStartups/MaxSessions high because recover fans out
 * parallel sessions and connections (OpenSSH defaults 10/10, FIELD-NOTES).
 */
export function sshdConfig(host: LabHostIdentity, sftpServer?: string): string {
  return [
    `# etcd-rescue lab host ${host.name}: written at boot, lives only in this host's overlay.`,
    `ListenAddress ${host.address}`,
    'Port 22',
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'UseDNS no',
    'PrintMotd no',
    'PidFile /run/sshd.pid',
    'MaxStartups 100',
    'MaxSessions 50',
    'AcceptEnv LANG LC_*',
    ...(sftpServer ? [`Subsystem sftp ${sftpServer}`] : []),
    '',
  ].join('\n')
}

/** /etc/hosts: loopback, then every host of the lab, so hosts resolve each other by name. */
export function etcHosts(self: LabHostIdentity, all: readonly LabHostIdentity[]): string {
  return [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${self.name}`,
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...all.map((h) => `${h.address}\t${h.name}`),
    '',
  ].join('\n')
}

/** A known_hosts line per host: its address and its own host key (`type base64`). */
export function knownHosts(entries: ReadonlyArray<{ address: string; publicKey: string }>): string {
  return entries.map((e) => `${e.address} ${e.publicKey.trim().split(/\s+/).slice(0, 2).join(' ')}\n`).join('')
}
