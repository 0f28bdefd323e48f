import { z } from 'zod';
import { duration, recipient } from '../config/types.js';
import { callerAsRecipient } from '../phone.js';
import { render } from '../template.js';
import { defineStep, Step, type StepResult } from './step.js';
import type { CallSession } from '../calls/session.js';
import type { NewSms, StepServices } from './services.js';

export const smsSchema = z
  .object({
    description: z.string().min(1).describe('the name the SMS history is filtered by'),
    provider: z.string().min(1).describe('a name under sms.providers'),
    to: z
      .array(recipient)
      .min(1)
      .default(['caller'])
      .describe('"caller" and/or E.164 numbers'),
    template: z.string().min(1).optional().describe('a name under sms.templates'),
    text: z.string().min(1).optional().describe('inline text with {merge} fields'),
    sender: z.string().min(1).max(20).optional(),
    oncePerCall: z.boolean().default(false),
    delay: duration.default(0),
  })
  .strict()
  .refine((v) => (v.template === undefined) !== (v.text === undefined), 'give either template or text');

type SmsConfig = z.output<typeof smsSchema>;

/** Hands the messages to the durable outbox and lets the call go on at once (S3, S9). */
class Sms extends Step<SmsConfig> {
  readonly kind = 'sms';

  async run(call: CallSession, { sms }: StepServices): Promise<StepResult> {
    const c = this.config;
    const base = { callId: call.callId, description: c.description, provider: c.provider };
    const { text, missing } = render(c.template ? sms.templates[c.template]! : c.text!, call.vars);
    if (missing.length) call.log.warn({ step: this.where, missing }, 'merge fields without a value');

    const messages: NewSms[] = [];
    for (const to of c.to) {
      if (to !== 'caller') {
        messages.push({ ...base, to, text, sender: c.sender, notBefore: Date.now() + c.delay });
        continue;
      }
      const caller = callerAsRecipient(call.vars.caller, sms.defaultCountry);
      if (caller.ok) messages.push({ ...base, to: caller.e164, text, sender: c.sender, notBefore: Date.now() + c.delay });
      else {
        sms.recordSkipped({ ...base, to: call.vars.caller, reason: caller.reason });
        call.log.info({ step: this.where, reason: caller.reason }, 'SMS to caller skipped');
      }
    }
    if (messages.length) {
      const once = c.oncePerCall ? { callId: call.callId, key: this.where } : undefined;
      const { duplicate, ids } = sms.accept(messages, once);
      call.log.info({ step: this.where, accepted: duplicate ? 0 : ids.length, duplicate }, duplicate ? 'SMS already sent in this call' : 'SMS accepted');
    }
    return 'next';
  }
}

export const sms = defineStep({
  kind: 'sms',
  description: 'Send an SMS through the durable outbox; the call goes on without waiting for the provider.',
  schema: smsSchema,
  create: (config, where) => new Sms(config, where),
});
