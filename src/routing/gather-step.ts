import { gatherSchema, type GatherConfig } from './settings.js';
import { gather as collect } from './prompts.js';
import { defineStep, Step, type StepResult } from '../calls/step.js';
import type { CallSession } from '../calls/session.js';
import type { StepServices } from '../calls/services.js';

/**
 * Asks the caller for keys (a customer number, a menu choice) and keeps them as a merge field —
 * `{digits}` unless `var` says otherwise — which a following `route` step sends as its digits
 * field (R1: "the caller keys in a customer number first").
 */
class Gather extends Step<GatherConfig> {
  readonly kind = 'gather';

  async run(call: CallSession, services: StepServices): Promise<StepResult> {
    const got = await collect(call, services, this.config);
    call.vars[this.config.var] = got.digits;
    call.log.info({ step: this.where, var: this.config.var, digits: got.digits.length, ended: got.ended }, 'gather done');
    return call.active ? 'next' : 'handed-off';
  }
}

export const gather = defineStep({
  kind: 'gather',
  description: 'Play a prompt and collect keys (max digits, terminator, timeouts, retries) into a merge field, {digits} by default.',
  schema: gatherSchema,
  create: (config, where) => new Gather(config, where),
});
