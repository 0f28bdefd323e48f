import { z } from 'zod';
import type { Step } from '../../calls/step.js';
import { sms as smsStep } from '../../sms/step.js';
import type { Destination } from '../settings.js';
import { defineDestination, namedEntries, type SchemaKit } from './kind.js';

/**
 * The seed's "interactive SMS": the caller is sent a text by the SMS step's own machinery (the
 * durable outbox, limits, once-per-call, history), then the call goes on: to `then`, or to the
 * stage's next step. An SMS that cannot be queued is logged and does not hold the caller.
 */

/** An SMS step's settings plus where the call goes after it. */
const smsDestinationSchema = (kit: SchemaKit) =>
  z.unknown().transform((v, ctx) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      ctx.addIssue({ code: 'custom', message: 'an SMS destination is an sms step\'s settings, e.g. { description: …, provider: …, template: … }' });
      return z.NEVER;
    }
    const { then, ...rest } = v as Record<string, unknown>;
    let next: Destination | undefined;
    if (then !== undefined) {
      const t = kit.destination.safeParse(then);
      if (!t.success) {
        for (const issue of t.error.issues) ctx.addIssue({ ...issue, path: ['then', ...issue.path] } as Parameters<typeof ctx.addIssue>[0]);
        return z.NEVER;
      }
      next = t.data;
    }
    const s = smsStep.schema.safeParse(rest);
    if (!s.success) {
      for (const issue of s.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
      return z.NEVER;
    }
    return { step: s.data as unknown, then: next };
  });

const steps = new WeakMap<object, Step>();

export const sms = defineDestination({
  ...namedEntries('sms', 'sms', smsDestinationSchema),
  checkSettings(smsEntries, c) {
    for (const [name, s] of Object.entries(smsEntries)) {
      const step = s.step as { provider: string; template?: string };
      if (!Object.hasOwn(c.sms.providers, step.provider)) {
        c.issue([name, 'provider'], `unknown provider "${step.provider}" (known: ${Object.keys(c.sms.providers).join(', ') || 'none'})`);
      }
      if (step.template !== undefined && !Object.hasOwn(c.sms.templates, step.template)) {
        c.issue([name, 'template'], `unknown template "${step.template}" (known: ${Object.keys(c.sms.templates).join(', ') || 'none'})`);
      }
      c.destination(s.then, [name, 'then']);
    }
  },
  loops: true,
  async reach(dest, run, scope, smsEntries) {
    const entry = smsEntries[dest.name];
    if (!entry) return run.fallback(scope, 'unknown-destination');
    let step = steps.get(entry);
    if (!step) steps.set(entry, (step = smsStep.create(entry.step as never, `routing.sms.${dest.name}`)));
    try {
      const r = await step.run(run.call, run.services);
      if (r === 'handed-off' || !run.call.active) return 'handed-off';
    } catch (e) {
      run.call.log.error({ step: scope.where, sms: dest.name, err: (e as Error).message }, 'SMS destination failed; the call goes on');
    }
    if (entry.then) return run.go(entry.then, scope);
    run.left(scope, `sms:${dest.name} → next step`);
    return 'next';
  },
});
