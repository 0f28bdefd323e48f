import type { z } from 'zod';
import type { StepCondition } from './condition.js';
import type { CallSession } from './session.js';
import type { StepServices } from './services.js';

/**
 * What a step tells the stage runner: go on with the next step; the call has left this service's
 * hands (hung up, or sent on to its destination) and the stage is over; or the stage failed for
 * this caller and the runner hands the call back to the dialplan with CALL_ACTIONS_RESULT=error,
 * so the dialplan's own fallback runs.
 */
export type StepResult = 'next' | 'handed-off' | 'fallback';

/**
 * The contract every step follows (after jambonz's tasks): the factory validates the config
 * with the step's schema when the file is loaded, so a running call never meets a bad config.
 */
export abstract class Step<C = unknown> {
  abstract readonly kind: string;
  /** The step's `when:`: the runner skips the step when it does not hold (set by the step registry). */
  when?: StepCondition;
  constructor(
    protected readonly config: C,
    /** where the step stands in the config, e.g. stages.queue-exit[1].say — for logs */
    readonly where: string,
  ) {}

  abstract run(call: CallSession, services: StepServices): Promise<StepResult>;
}

export interface StepDefinition<S extends z.ZodType = z.ZodType> {
  kind: string;
  /** one line for the docs and the JSON Schema */
  description: string;
  schema: S;
  create(config: z.output<S>, where: string): Step;
}

/** A validated step as it stands in the config, ready to be built. */
export interface StepSpec {
  kind: string;
  config: unknown;
  /** where it stands in the config, e.g. stages.queue-exit[1].say */
  where: string;
  /** `when:` beside the step's kind: run it only when this holds */
  when?: StepCondition;
}

export function defineStep<S extends z.ZodType>(def: StepDefinition<S>): StepDefinition<S> {
  return def;
}
