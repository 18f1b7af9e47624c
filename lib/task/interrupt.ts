// Ctrl-C during a recovery. Killing the process mid-step would leave a host half
// way through a script nobody watches; so the first Ctrl-C only asks: the
// executor checks the signal between phases (and before each retry), lets the
// remote steps already running finish, then stops with exit 130 and says where
// every host stands. The CLI turns a second Ctrl-C into an immediate exit.
import { ExitCode, RescueError } from '../errors.ts'

export class Interrupted extends RescueError {
  constructor(readonly after: string) {
    super(`stopped by Ctrl-C after ${after}: no new step was started, and the steps already running were let finish`, {
      exitCode: ExitCode.INTERRUPTED,
    })
  }
}

/** Throws Interrupted when the run was asked to stop; call it only between steps. */
export function checkpoint(signal: AbortSignal | undefined, after: string): void {
  if (signal?.aborted) throw new Interrupted(after)
}

/**
 * SIGINT for a CLI run: the first one aborts the returned signal (the run stops
 * at its next checkpoint), a second one exits at once with 130. `release` puts
 * the default handling back.
 */
export function interruptOnSigint(onFirst: () => void): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController()
  const handler = () => {
    if (controller.signal.aborted) process.exit(ExitCode.INTERRUPTED)
    controller.abort()
    onFirst()
  }
  process.on('SIGINT', handler)
  return { signal: controller.signal, release: () => process.off('SIGINT', handler) }
}
