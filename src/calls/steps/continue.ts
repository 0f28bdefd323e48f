import { z } from 'zod';
import { MAX_COUNT } from '../../config/types.js';
import { defineStep, Step, type StepResult } from '../step.js';
import type { CallSession } from '../session.js';

export const continueSchema = z
  .union([
    z.null(),
    z
      .object({
        context: z.string().min(1).optional(),
        extension: z.string().min(1).optional(),
        priority: z.number().int().positive().max(MAX_COUNT).optional(),
        label: z.string().min(1).optional(),
      })
      .strict()
      .refine((v) => !(v.priority && v.label), 'give priority or label, not both'),
  ])
  .transform((v) => v ?? {});

class Continue extends Step<z.output<typeof continueSchema>> {
  readonly kind = 'continue';

  async run(call: CallSession): Promise<StepResult> {
    await call.channel.continueInDialplan(this.config);
    call.log.info({ step: this.where, target: this.config }, 'handed back to the dialplan');
    return 'handed-off';
  }
}

export const continueStep = defineStep({
  kind: 'continue',
  description: 'Hand the call back to the dialplan: after the Stasis() line, or at a given context/extension/priority.',
  schema: continueSchema,
  create: (config, where) => new Continue(config, where),
});
