import { z } from 'zod';
import { stepConditionSchema } from '../calls/condition.js';
import type { Step, StepDefinition, StepSpec } from '../calls/step.js';
import { continueStep } from '../calls/steps/continue.js';
import { hangup } from '../calls/steps/hangup.js';
import { say } from '../calls/steps/say.js';
import { FEATURES } from './features.js';

/**
 * Every step kind a stage may use: the kernel's own, then each feature's. A new step is one
 * module plus one line, here for a kernel step or in its feature's `steps`.
 */
export const stepDefinitions: Record<string, StepDefinition> = Object.fromEntries(
  [say, hangup, continueStep, ...FEATURES.flatMap((f) => f.steps ?? [])].map((d) => [d.kind, d as StepDefinition]),
);

export type { StepSpec };

/**
 * A stage's list item: a one-key map `{ <kind>: <config> }`, with an optional `when:` beside the
 * kind (calls/condition.ts). Validated by hand rather than as a zod union so an error names the
 * step kind and its field instead of listing every alternative.
 */
export const stepItem = z.unknown().transform((item, ctx): StepSpec => {
  const all = item && typeof item === 'object' && !Array.isArray(item) ? Object.entries(item) : [];
  const entries = all.filter(([k]) => k !== 'when');
  const whenGiven = all.length !== entries.length;
  let when: StepSpec['when'];
  if (whenGiven) {
    const parsed = stepConditionSchema.safeParse((item as { when: unknown }).when);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: ['when', ...issue.path] } as Parameters<typeof ctx.addIssue>[0]);
      return z.NEVER;
    }
    when = parsed.data;
  }
  if (entries.length !== 1) {
    ctx.addIssue({ code: 'custom', message: `a step is one of ${Object.keys(stepDefinitions).join(', ')} with its settings, e.g. "- say: Hello"` });
    return z.NEVER;
  }
  const [kind, value] = entries[0]!;
  const def = stepDefinitions[kind];
  if (!def) {
    ctx.addIssue({ code: 'custom', message: `unknown step "${kind}" (known: ${Object.keys(stepDefinitions).join(', ')})`, path: [kind] });
    return z.NEVER;
  }
  const parsed = def.schema.safeParse(value === undefined ? null : value);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [kind, ...issue.path] } as Parameters<typeof ctx.addIssue>[0]);
    return z.NEVER;
  }
  return { kind, config: parsed.data, where: '', ...(when ? { when } : {}) };
});

/** The same shape as JSON Schema input, for editors: a union of the one-key maps. */
export const stepItemForSchema = z.union(
  Object.values(stepDefinitions).map((d) =>
    z.object({ [d.kind]: d.schema, when: stepConditionSchema.optional() }).strict().describe(d.description),
  ) as unknown as [z.ZodType, z.ZodType],
);

export function createStep(spec: StepSpec): Step {
  const step = stepDefinitions[spec.kind]!.create(spec.config, spec.where);
  if (spec.when) step.when = spec.when;
  return step;
}
