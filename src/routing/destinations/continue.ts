import type { StepResult } from '../../calls/step.js';
import { describeDestination, type Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';

/** Back to the dialplan: after the Stasis() line, or at a place the admin named. */
export async function continueTo(dest: Extract<Destination, { kind: 'continue' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  await run.call.channel.continueInDialplan(dest.target);
  run.left(scope, describeDestination(dest));
  return 'handed-off';
}
