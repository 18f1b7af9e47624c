// What a given etcd version can do (FIELD-NOTES, "Which binary").

export interface EtcdVersion {
  major: number
  minor: number
  patch: number
  text: string
}

export function parseVersion(text: string): EtcdVersion | undefined {
  const m = /(?:etcd(?:ctl|utl)? )?[Vv]ersion:?\s*v?(\d+)\.(\d+)\.(\d+)/.exec(text) ?? /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim())
  if (!m) return undefined
  const [major, minor, patch] = [m[1], m[2], m[3]].map(Number)
  return { major, minor, patch, text: `${major}.${minor}.${patch}` }
}

function atLeast(v: EtcdVersion, major: number, minor: number, patch: number): boolean {
  if (v.major !== major) return v.major > major
  if (v.minor !== minor) return v.minor > minor
  return v.patch >= patch
}

/** 3.4 restores with etcdctl (API v3); 3.5 deprecates that for etcdutl; 3.6 removed it. */
export function restoreTool(v: EtcdVersion): 'etcdctl' | 'etcdutl' {
  return atLeast(v, 3, 5, 0) ? 'etcdutl' : 'etcdctl'
}

/** --bump-revision/--mark-compacted arrived in 3.4.27, 3.5.10 and 3.6.0. */
export function supportsBumpRevision(v: EtcdVersion): boolean {
  if (v.major === 3 && v.minor === 4) return atLeast(v, 3, 4, 27)
  if (v.major === 3 && v.minor === 5) return atLeast(v, 3, 5, 10)
  return atLeast(v, 3, 6, 0)
}

/** Versions this tool knows how to restore. */
export function isSupported(v: EtcdVersion): boolean {
  return v.major === 3 && v.minor >= 4
}
