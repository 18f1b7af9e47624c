// Local commands the lab runs on the machine itself (ip, ssh-keygen, apt-get).
// Always argv, never a shell line; always non-interactive (stdin closed or given),
// and a failure is a value carrying the command, exit code and stderr.
import { spawn } from 'node:child_process'
import { RescueError } from '../errors.ts'
import { sh } from '../shell/sh.ts'

export interface CommandResult {
  code: number | null
  signal?: string
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. Default: stdin closed at once. */
  input?: string
  /** Return a non-zero exit instead of throwing. Default false. */
  allowFailure?: boolean
  /** Kill the command (SIGKILL) after this long. Default 120 s. */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/** A local command that failed; `result` holds everything it printed. */
export class LocalCommandError extends RescueError {
  constructor(
    readonly argv: readonly string[],
    readonly result: CommandResult,
    hint?: string,
  ) {
    const how = result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`
    const excerpt = (result.stderr || result.stdout).trimEnd().split('\n').slice(-8).join('\n    ')
    super(`${sh`${argv}`.text.slice(0, 200)} failed (${how})${excerpt ? `:\n    ${excerpt}` : ''}`, { hint })
  }
}

export function run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new RescueError(`cannot run ${file}: ${e.message}`, { cause: e }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const result: CommandResult = {
        code,
        signal: signal ?? undefined,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }
      if (code === 0 || options.allowFailure) resolve(result)
      else reject(new LocalCommandError(argv, result))
    })
    child.stdin.on('error', () => {}) // a command that exits before reading its input
    child.stdin.end(options.input ?? '')
  })
}
