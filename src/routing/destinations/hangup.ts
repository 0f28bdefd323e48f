import type { StepResult } from '../../calls/step.js';
import type { Destination } from '../config.js';
import type { RouteRun, Scope } from '../router.js';

export async function hangup(dest: Extract<Destination, { kind: 'hangup' }>, run: RouteRun, scope: Scope): Promise<StepResult> {
  await run.call.channel.hangup(dest.reason);
  run.left(scope, 'hangup');
  return 'handed-off';
}
