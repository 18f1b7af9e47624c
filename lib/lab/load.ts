// `cluster load`: N keys of varied sizes, written through the v3 JSON gateway
// with bounded concurrency, spread over the members. Content is a pure function
// of (seed, index) (lib/drill/dataset.ts), so a later check can recompute it, and
// a manifest of key → sha256(value) is returned (and written if asked) to compare
// a restored cluster against.
import { writeFileSync } from 'node:fs'
import { InputError } from '../errors.ts'
import { directGateway, type Gateway } from '../etcd/gateway.ts'
import { writeDataset } from '../drill/dataset.ts'
import { CLIENT_PORT, clientUrl, labTls } from './etcd-http.ts'
import { openLab, type LabRef, type OpenLab } from './open.ts'

export { loadKey, loadValue, sha256Hex } from '../drill/dataset.ts'

export interface ClusterLoadOptions {
  /** How many keys. Required, 1..1,000,000. */
  keys: number
  /** Content seed: same seed, same keys and values. Default "etcd-rescue". */
  seed?: string
  /** Key prefix. Default /etcd-rescue/load/. */
  prefix?: string
  /** Puts in flight at once. Default 16. */
  concurrency?: number
  /** Also write the manifest (JSON object key → sha256 hex) to this file. Default: not written. */
  manifestFile?: string
}

export interface ClusterLoadResult {
  keys: number
  bytes: number
  /** Highest revision a put returned. */
  revision: number
  /** key → sha256 (hex) of its value. */
  manifest: Record<string, string>
  manifestFile?: string
  elapsedMs: number
}

/**
 * Each member's JSON gateway, straight over the bridge: the lab is this machine's
 * (and so are a --tls lab's client certificates, kept in its pki/).
 */
export function labGateways(lab: Pick<OpenLab, 'state' | 'paths'>): Gateway[] {
  return lab.state.hosts.map((h) => lab.state.systemd?.tls
    ? directGateway(`https://${h.address}:${CLIENT_PORT}`, labTls(lab.paths, h.name))
    : directGateway(clientUrl(h.address)))
}

export async function clusterLoad(lab: LabRef, options: ClusterLoadOptions): Promise<ClusterLoadResult> {
  const t0 = Date.now()
  const count = options.keys
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000) throw new InputError(`--keys must be 1 to 1000000, got ${count}`)
  const concurrency = options.concurrency ?? 16
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new InputError(`--concurrency must be 1 to 256, got ${concurrency}`)
  const seed = options.seed ?? 'etcd-rescue'
  const prefix = options.prefix ?? '/etcd-rescue/load/'
  const data = await writeDataset(labGateways(openLab(lab)), { keys: count, seed, prefix, concurrency })
  const manifest = Object.fromEntries(data.digests)
  if (options.manifestFile) writeFileSync(options.manifestFile, `${JSON.stringify(manifest, null, 1)}\n`)
  return { keys: count, bytes: data.bytes, revision: data.revision, manifest, manifestFile: options.manifestFile, elapsedMs: Date.now() - t0 }
}
