// Waiting on something a host does, bounded: a host that stopped answering must not hold a run.

/** Resolves once `p` settles (either way) or `ms` have passed, whichever is first; never rejects. */
export function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => setTimeout(r, ms).unref())])
}
