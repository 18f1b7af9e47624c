// Exit codes are a contract with scripts that call etcd-rescue: documented in
// --help and the README, never renumbered.
export const ExitCode = {
  /** Recovered (or checked) and verified. */
  OK: 0,
  /** Failed after changes began; the output says what changed and how to go on. */
  FAILED: 1,
  /** Bad input: flags, inventory, snapshot. Nothing was changed. */
  BAD_INPUT: 2,
  /** A preflight check failed on at least one host. Nothing was changed. */
  PREFLIGHT: 3,
  /** The cluster is up but verification found a problem. */
  VERIFY: 4,
  /** Interrupted (Ctrl-C): no new step was started; the output says where each host stands. 128 + SIGINT, as shells report it. */
  INTERRUPTED: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export interface RescueErrorOptions {
  exitCode?: ExitCode
  /** What the operator can do about it, one or two sentences. */
  hint?: string
  /** Where the problem is: a host, file or file:line. */
  where?: string
  cause?: unknown
}

/** Base of every error etcd-rescue reports to a user. */
export class RescueError extends Error {
  readonly exitCode: ExitCode
  readonly hint?: string
  readonly where?: string

  constructor(message: string, options: RescueErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.name = new.target.name
    this.exitCode = options.exitCode ?? ExitCode.FAILED
    this.hint = options.hint
    this.where = options.where
  }
}

/** Something the user gave us is wrong; nothing was changed. Exit code 2. */
export class InputError extends RescueError {
  constructor(message: string, options: Omit<RescueErrorOptions, 'exitCode'> = {}) {
    super(message, { ...options, exitCode: ExitCode.BAD_INPUT })
  }
}

/** One-line-per-fact rendering for terminals and logs. */
export function formatError(err: unknown): string {
  if (err instanceof RescueError) {
    const head = err.where ? `${err.where}: ${err.message}` : err.message
    return err.hint ? `${head}\n  hint: ${err.hint}` : head
  }
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}
