import type { Destination } from '../settings.js';
import { defineDestination } from './kind.js';

interface Hangup extends Destination {
  readonly kind: 'hangup';
  readonly reason?: string;
}

export const hangup = defineDestination({
  kind: 'hangup',
  // no name to add, and the reason is for Asterisk, not the log
  describe: () => 'hangup',
  async reach(dest: Hangup, run, scope) {
    await run.call.channel.hangup(dest.reason);
    run.left(scope, 'hangup');
    return 'handed-off';
  },
});
