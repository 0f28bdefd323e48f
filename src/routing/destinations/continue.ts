import { z } from 'zod';
import { MAX_COUNT } from '../../config/types.js';
import type { Destination } from '../settings.js';
import { defineDestination } from './kind.js';

const targetSchema = z
  .object({
    context: z.string().min(1).optional(),
    extension: z.union([z.string().min(1), z.number()]).transform(String).optional(),
    priority: z.number().int().positive().max(MAX_COUNT).optional(),
  })
  .strict();

interface Continue extends Destination {
  readonly kind: 'continue';
  /** no place: on after the Stasis() line */
  readonly target: z.output<typeof targetSchema>;
}

/**
 * Back to the dialplan: after the Stasis() line, or at a place the admin named. Only the file
 * can send a caller here; no API answer names it.
 */
export const continueTo = defineDestination({
  kind: 'continue',
  read(value): Continue | string {
    const parsed = targetSchema.safeParse(value ?? {});
    if (!parsed.success) return 'continue takes {} or { context, extension, priority }';
    return { kind: 'continue', target: parsed.data };
  },
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
