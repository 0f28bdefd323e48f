import type { Destination } from '../settings.js';
import { defineDestination, routed } from './kind.js';

interface Hangup extends Destination {
  readonly kind: 'hangup';
  readonly reason?: string;
}

const REASONS = ['normal', 'busy', 'congestion', 'no_answer', 'rejected', 'unallocated', 'failure'] as const;

export const hangup = defineDestination({
  kind: 'hangup',
  read(value): Hangup | string {
    if (value === null || value === undefined || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)) return { kind: 'hangup' };
    const reason = typeof value === 'string' ? value : (value as { reason?: unknown }).reason;
    if (typeof reason === 'string' && (REASONS as readonly string[]).includes(reason)) return { kind: 'hangup', reason };
    return `hangup takes {} or a reason (${REASONS.join(', ')})`;
  },
  // an answer saying hangup needs no redirect, and has none to give
  answer: { results: ['hangup'], decide: () => routed({ kind: 'hangup' }, 'hangup') },
  // no name to add, and the reason is for Asterisk, not the log
  describe: () => 'hangup',
  async reach(dest: Hangup, run, scope) {
    await run.call.channel.hangup(dest.reason);
    run.left(scope, 'hangup');
    return 'handed-off';
  },
});
