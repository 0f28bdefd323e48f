import type { ContinueTarget } from '../config.js';
import type { Destination } from '../settings.js';
import { defineDestination } from './kind.js';

interface Continue extends Destination {
  readonly kind: 'continue';
  /** no place: on after the Stasis() line */
  readonly target: ContinueTarget;
}

/** Back to the dialplan: after the Stasis() line, or at a place the admin named. */
export const continueTo = defineDestination({
  kind: 'continue',
  describe: (dest: Continue) =>
    dest.target.context || dest.target.extension ? `continue:${dest.target.context ?? ''},${dest.target.extension ?? ''},${dest.target.priority ?? 1}` : 'continue',
  // only a whole place can be a Goto() target for the dialplan's fallback
  place: (dest: Continue) => (dest.target.context && dest.target.extension ? dest.target : undefined),
  async reach(dest: Continue, run, scope) {
    await run.call.channel.continueInDialplan(dest.target);
    run.left(scope, run.describe(dest));
    return 'handed-off';
  },
});
