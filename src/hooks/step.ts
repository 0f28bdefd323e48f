import { z } from 'zod';
import { defineStep, Step, type StepResult } from '../calls/step.js';
import type { CallSession } from '../calls/session.js';
import type { StepServices } from '../calls/services.js';

export const hookStepSchema = z.union([
  z.string().min(1).transform((name) => ({ name, onFailure: 'continue' as const })),
  z
    .object({
      name: z.string().min(1).describe('a hook under hooks: with on: inline'),
      onFailure: z
        .enum(['continue', 'fail'])
        .default('continue')
        .describe('continue: go on with the next step; fail: the stage fails and the dialplan takes its fallback'),
    })
    .strict(),
]);

type HookStepConfig = z.output<typeof hookStepSchema>;

/**
 * Runs an `on: inline` hook while the caller waits (a live decision: look the caller up, ask
 * whether to route them elsewhere). The caller waits at most the hook's timeout per attempt; the
 * variables it extracts are merge fields for the following steps right away.
 */
class HookStep extends Step<HookStepConfig> {
  readonly kind = 'hook';

  async run(call: CallSession, services: StepServices): Promise<StepResult> {
    if (!services.hooks) throw new Error(`${this.where}: hooks are not available in this service`);
    const result = await services.hooks.runInline(this.config.name, { callId: call.callId, vars: call.vars, signal: call.signal });
    Object.assign(call.vars, result.extracted);
    const log = { step: this.where, hook: this.config.name, status: result.status, reason: result.reason, attempts: result.attempts, durationMs: result.durationMs, extracted: Object.keys(result.extracted) };
    if (result.status === 'failed') {
      call.log.warn(log, 'inline hook failed');
      if (this.config.onFailure === 'fail') throw new Error(`${this.where}: hook "${this.config.name}" failed: ${result.reason}`);
    } else {
      call.log.info(log, 'inline hook done');
    }
    return call.active ? 'next' : 'handed-off';
  }
}

export const hook = defineStep({
  kind: 'hook',
  description: 'Run an inline hook (hooks: with on: inline) while the caller waits; what it extracts becomes merge fields for the next steps.',
  schema: hookStepSchema,
  create: (config, where) => new HookStep(config as HookStepConfig, where),
});
