import { z } from 'zod';
import type { StepSpec } from '../calls/step.js';
import { countryCode } from '../config/types.js';
import { fieldsOf } from '../template.js';
import { smsLimitsSchema } from './limits.js';
import { smsProviderSchema } from './providers.js';

export { smsProviderSchema, type SmsProviderConfig } from './providers.js';

export const smsSection = z
  .object({
    defaultCountry: countryCode.optional().describe('how caller IDs without a + are read'),
    providers: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), smsProviderSchema).default({}),
    templates: z.record(z.string(), z.string().min(1)).default({}),
    limits: smsLimitsSchema.optional(),
    concurrency: z.number().int().min(1).max(64).default(4).describe('SMS requests in flight at once'),
  })
  .strict();
export type SmsSection = z.output<typeof smsSection>;

export const SMS_SECTIONS = { sms: smsSection.default({ providers: {}, templates: {}, concurrency: 4 }) };

/** An sms step names a provider and maybe a template: both must exist; templates' merge fields must be well formed. */
export function checkSms(c: { sms: SmsSection; stages: Record<string, StepSpec[]> }, ctx: z.RefinementCtx): void {
  for (const [stage, steps] of Object.entries(c.stages)) {
    steps.forEach((spec, i) => {
      if (spec.kind !== 'sms') return;
      const s = spec.config as { provider: string; template?: string };
      const at = ['stages', stage, i, 'sms'];
      if (!c.sms.providers[s.provider]) {
        const known = Object.keys(c.sms.providers);
        ctx.addIssue({ code: 'custom', path: [...at, 'provider'], message: `unknown provider "${s.provider}" (${known.length ? `known: ${known.join(', ')}` : 'sms.providers is empty'})` });
      }
      if (s.template !== undefined && c.sms.templates[s.template] === undefined) {
        ctx.addIssue({ code: 'custom', path: [...at, 'template'], message: `unknown template "${s.template}" (known: ${Object.keys(c.sms.templates).join(', ') || 'none'})` });
      }
    });
  }
  for (const [name, text] of Object.entries(c.sms.templates)) {
    // a name, or a number's other form ({caller.e164}, {did.national})
    const bad = fieldsOf(text).filter((f) => !/^[A-Za-z_][A-Za-z0-9_]*(\.(e164|national))?$/.test(f));
    if (bad.length) ctx.addIssue({ code: 'custom', path: ['sms', 'templates', name], message: `malformed merge field ${bad.join(', ')}` });
  }
}
