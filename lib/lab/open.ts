// Finding a lab that is up: callers pass either what labUp returned or just
// its name (and --dir), e.g. a drill started by another process.
import { InputError } from '../errors.ts'
import { DEFAULT_LAB_NAME, validateLabName } from './names.ts'
import { labBaseDir, labPaths, type LabPaths } from './paths.ts'
import { readState, type LabState } from './state.ts'

/** A lab as labUp returns it, or by name (default "lab") and state directory. */
export type LabRef = { paths: LabPaths; state: LabState } | { name?: string; dir?: string }

export interface OpenLab {
  paths: LabPaths
  state: LabState
}

export function openLab(ref: LabRef): OpenLab {
  if ('paths' in ref && 'state' in ref) return { paths: ref.paths, state: ref.state }
  const name = validateLabName(ref.name ?? DEFAULT_LAB_NAME)
  const paths = labPaths(labBaseDir(ref.dir), name)
  const state = readState(paths)
  if (!state || state.phase !== 'up') {
    throw new InputError(`no lab "${name}" is up here`, { where: paths.dir, hint: 'Start one: npx zx scripts/lab.mjs up' + (name === DEFAULT_LAB_NAME ? '' : ` --name ${name}`) })
  }
  return { paths, state }
}
