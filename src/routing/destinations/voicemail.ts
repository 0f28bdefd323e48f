import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';
import { handOff, placeOf } from './dialplan.js';

export function voicemail(dest: Extract<Destination, { kind: 'voicemail' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  return handOff(run, scope, dest, placeOf('voicemail', dest.name, run.rs.destinations));
}
