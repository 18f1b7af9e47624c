// Running an entry point as a user would: `npx zx scripts/NAME.mjs ARGS`, with
// CI=true (plain lines). Under GNU timeout, which puts the command in its own
// process group and signals all of it: a spawnSync timeout alone would end npx
// and leave the node under it running, holding member locks and SSH sessions.
import { spawnSync } from 'node:child_process'

export function runScript(script: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutSeconds?: number } = {}) {
  const secs = options.timeoutSeconds ?? 240
  return spawnSync('timeout', ['-k', '10', String(secs), 'npx', 'zx', `scripts/${script}.mjs`, ...args], {
    encoding: 'utf8',
    input: options.input,
    env: options.env ?? { ...process.env, CI: 'true' },
  })
}

/** `recover.mjs` with these arguments. */
export const runRecover = (args: string[], input?: string) => runScript('recover', args, { input })
