// A Kubernetes-like cluster's data, for measuring what compression does on the
// kind of snapshot operators actually recover: objects under /registry/ as the
// API server stores them (the `k8s\0` protobuf envelope around apiVersion, kind
// and the object: names, labels, kubectl's last-applied JSON on the kinds a person
// applies, managedFields, images, env, UIDs, timestamps; spec and status as
// protobuf-like fields), and one object in ten a Secret encrypted at rest
// (`k8s:enc:aescbc:v1:`, random bytes: it does not compress), one Secret in three
// a Helm release of 10-40 KiB.
// Deterministic from a seed, so two benches write the same data. Not a real
// API server's bytes: close enough in shape that zstd finds what it finds there.
import { createCipheriv, createHash } from 'node:crypto'
import { varint } from '../etcd/protobuf.ts'

/** A small fast PRNG (mulberry32) from a string seed: the same objects every time. */
function rng(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0)
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const NAMESPACES = ['default', 'kube-system', 'monitoring', 'ingress-nginx', 'payments', 'checkout', 'search', 'data-platform', 'auth', 'logging']
const APPS = ['api', 'web', 'worker', 'redis', 'postgres', 'kafka', 'frontend', 'cart', 'billing', 'gateway', 'indexer', 'scheduler', 'exporter', 'fluent-bit']
const REGISTRIES = ['registry.k8s.io', 'docker.io/library', 'quay.io/prometheus', 'ghcr.io/example-org', '123456789012.dkr.ecr.eu-west-1.amazonaws.com']

/** Protobuf-like field: tag byte, varint length, bytes. */
function field(tag: number, value: string | Buffer): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value) : value
  return Buffer.concat([Buffer.from([(tag << 3) | 2]), varint(BigInt(body.length)), body])
}

/**
 * A value as protobuf holds it: a message's fields by number, not name; a list as
 * repeated fields; a string's bytes; a map (ConfigMap data) as key and value entries.
 */
function proto(v: unknown, asMap = false): Buffer {
  if (typeof v === 'string') return Buffer.from(v)
  if (typeof v === 'number' || typeof v === 'boolean') return Buffer.from(String(Number(v)))
  if (Array.isArray(v)) return Buffer.concat(v.map((x) => field(1, proto(x))))
  if (v && typeof v === 'object') {
    return Buffer.concat(Object.entries(v).map(([k, x], i) => asMap || k === 'data'
      ? field(i + 1, k === 'data' ? proto(x, true) : Buffer.concat([field(1, k), field(2, proto(x))]))
      : field(i + 1, proto(x))))
  }
  return Buffer.alloc(0)
}

export interface KubeObject {
  key: string
  value: Buffer
}

/** The `n`-th object of the data set named by `seed`. */
export function kubeObject(seed: string, n: number): KubeObject {
  const r = rng(`${seed}/${n}`)
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]
  const hex = (k: number) => Array.from({ length: k }, () => Math.floor(r() * 16).toString(16)).join('')
  const uid = `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`
  const ns = pick(NAMESPACES)
  const app = pick(APPS)
  const hash = hex(10)
  const time = new Date(Date.UTC(2026, 10, 1) + Math.floor(r() * 20 * 86400) * 1000).toISOString().replace('.000', '')
  const kinds = ['Pod', 'Pod', 'Pod', 'ReplicaSet', 'Event', 'Event', 'ConfigMap', 'Service', 'Endpoints', 'Secret'] as const
  const kind = kinds[n % kinds.length]
  const name = kind === 'Pod' ? `${app}-${hash}-${hex(5)}` : kind === 'ReplicaSet' ? `${app}-${hash}` : kind === 'Event' ? `${app}-${hash}.${hex(16)}` : `${app}-${hex(6)}`
  const resource = { Pod: 'pods', ReplicaSet: 'replicasets', Event: 'events', ConfigMap: 'configmaps', Service: 'services', Endpoints: 'services/endpoints', Secret: 'secrets' }[kind]
  const key = `/registry/${resource}/${ns}/${name}`
  if (kind === 'Secret') {
    // Encrypted at rest: the envelope's prefix, then ciphertext. One in three a Helm
    // release (sh.helm.release.v1.*: the chart and values, tens of KiB), the rest small.
    const size = n % 30 === 9 ? 10_000 + Math.floor(r() * 30_000) : 200 + Math.floor(r() * 3000)
    const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(`${seed}/${n}/key`).digest(), Buffer.alloc(16, n & 0xff))
    return { key, value: Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), cipher.update(Buffer.alloc(size))]) }
  }
  const labels = { app, 'app.kubernetes.io/name': app, 'app.kubernetes.io/part-of': ns, 'pod-template-hash': hash, tier: pick(['backend', 'frontend', 'data']) }
  const image = `${pick(REGISTRIES)}/${app}:v${1 + Math.floor(r() * 3)}.${Math.floor(r() * 30)}.${Math.floor(r() * 10)}`
  const env = Array.from({ length: 3 + Math.floor(r() * 12) }, (_, i) => ({ name: `${app.toUpperCase().replace(/-/g, '_')}_SETTING_${i}`, value: i % 3 ? `${pick(['true', 'false', '30s', 'info', 'https://'])}${i % 2 ? `${app}.${ns}.svc.cluster.local:${8000 + i}` : ''}` : hex(24) }))
  const spec = kind === 'Event'
    ? { reason: pick(['Scheduled', 'Pulled', 'Created', 'Started', 'BackOff', 'Unhealthy']), message: `Successfully assigned ${ns}/${name} to node-${Math.floor(r() * 40)}.cluster.internal`, count: Math.floor(r() * 50), firstTimestamp: time, lastTimestamp: time, source: { component: 'kubelet', host: `node-${Math.floor(r() * 40)}` } }
    : kind === 'ConfigMap'
      ? { data: Object.fromEntries(Array.from({ length: 2 + Math.floor(r() * 8) }, (_, i) => [`config-${i}.yaml`, Array.from({ length: 5 + Math.floor(r() * 60) }, (_, j) => `  ${app}.setting${j}: ${j % 4 ? hex(4 + (j % 12)) : `"${pick(APPS)}.${ns}.svc"`}`).join('\n')])) }
      : { containers: [{ name: app, image, env, ports: [{ containerPort: 8080, protocol: 'TCP' }], resources: { limits: { cpu: '500m', memory: '512Mi' }, requests: { cpu: '100m', memory: '128Mi' } }, volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] }], nodeName: `node-${Math.floor(r() * 40)}.cluster.internal`, serviceAccountName: app, restartPolicy: 'Always', schedulerName: 'default-scheduler' }
  // kubectl's last-applied JSON only on what a person applies (controllers make pods,
  // replica sets, events and endpoints); managedFields (JSON in the API too) on all.
  const applied = kind === 'ConfigMap' || kind === 'Service'
  const lastApplied = JSON.stringify({ apiVersion: 'v1', kind, metadata: { name, namespace: ns, labels }, spec })
  const manager = applied ? 'kubectl-client-side-apply' : kind === 'Event' ? 'kubelet' : 'kube-controller-manager'
  const managed = JSON.stringify({ 'f:metadata': { 'f:labels': Object.fromEntries(Object.keys(labels).map((k) => [`f:${k}`, {}])) }, 'f:spec': Object.fromEntries(Object.keys(spec).map((k) => [`f:${k}`, {}])) })
  const meta = Buffer.concat([
    field(1, name), field(3, ns), field(5, uid), field(6, String(10_000 + n)), field(8, time),
    ...Object.entries(labels).map(([k, v]) => field(11, Buffer.concat([field(1, k), field(2, v)]))),
    ...(applied ? [field(12, Buffer.concat([field(1, 'kubectl.kubernetes.io/last-applied-configuration'), field(2, lastApplied)]))] : []),
    field(17, Buffer.concat([field(1, manager), field(2, 'Update'), field(3, 'v1'), field(4, time), field(6, managed)])),
  ])
  // The spec and status as protobuf: field numbers and values, no names (maps keep their keys).
  const body = Buffer.concat([field(1, meta), field(2, proto(spec)), field(3, proto({ phase: 'Running', podIP: `10.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}`, startTime: time }))])
  const api = kind === 'ReplicaSet' ? 'apps/v1' : kind === 'Event' ? 'events.k8s.io/v1' : 'v1'
  return { key, value: Buffer.concat([Buffer.from('k8s\0'), field(1, Buffer.concat([field(1, api), field(2, kind)])), field(2, body), field(3, ''), field(4, '')]) }
}
