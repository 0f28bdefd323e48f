import { z } from 'zod';
import { defineStep, Step, type StepResult } from '../step.js';
import type { CallSession } from '../session.js';

// ARI's hangup reasons (DELETE /channels/{id}?reason=…)
const reasons = ['normal', 'busy', 'congestion', 'no_answer', 'timeout', 'rejected', 'unallocated', 'normal_unspecified', 'number_incomplete', 'codec_mismatch', 'interworking', 'failure', 'answered_elsewhere'] as const;

export const hangupSchema = z
  .union([z.null(), z.object({ reason: z.enum(reasons).optional() }).strict()])
  .transform((v) => v ?? {});

class Hangup extends Step<z.output<typeof hangupSchema>> {
  readonly kind = 'hangup';

  async run(call: CallSession): Promise<StepResult> {
    await call.channel.hangup(this.config.reason);
    call.log.info({ step: this.where }, 'hung up');
    return 'handed-off';
  }
}

export const hangup = defineStep({
  kind: 'hangup',
  description: 'Hang up the call.',
  schema: hangupSchema,
  create: (config, where) => new Hangup(config, where),
});
