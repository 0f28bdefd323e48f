import { z } from 'zod';
import { duration, recipient } from '../config/types.js';
import { callerAsRecipient } from '../phone.js';
import { senderSchema } from './http-provider.js';
import { fetchSmsText, textApiSchema } from './text-api.js';
import { render } from '../template.js';
import { defineStep, Step, type StepResult } from '../calls/step.js';
import type { CallSession } from '../calls/session.js';
import type { NewSms, StepServices } from '../calls/services.js';

/** The seed writes recipients as one comma-separated field; a YAML list works as well. */
const recipients = z
  .union([
    z.string().transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s !== '')),
    z.array(z.string()),
  ])
  .pipe(z.array(recipient).min(1, 'at least one recipient'));

export const smsSchema = z
  .object({
    description: z.string().min(1).describe('the name the SMS history is filtered by (S1)'),
    provider: z.string().min(1).describe('a name under sms.providers'),
    to: recipients
      .default(['caller'])
      .describe('"caller" and/or E.164 numbers, as a list or one comma-separated string (S4)'),
    alsoToCaller: z.boolean().default(false).describe('send to the caller too; never to a withheld or invalid caller ID (S5)'),
    template: z.string().min(1).optional().describe('a name under sms.templates'),
    text: z
      .union([
        z.string().min(1).describe('inline text with {merge} fields'),
        z.strictObject({ fromApi: textApiSchema }).describe("the text from the customer's API (S8)"),
      ])
      .optional(),
    sender: senderSchema.optional().describe("sender ID or from-number; default: the provider's `from` (S2)"),
    oncePerCall: z.boolean().default(false).describe('reaching the step again in the same call sends nothing more (S6)'),
    delay: duration.default(0).describe('send this long after the call reached the step, without holding the call (S3)'),
  })
  .strict()
  .refine((v) => (v.template === undefined) !== (v.text === undefined), 'give either template or text');

type SmsConfig = z.output<typeof smsSchema>;

/**
 * Hands the messages to the durable outbox and lets the call go on (S3, S9).
 *
 * Text from the customer's API is fetched here, while the caller waits at most the API's timeout,
 * rather than later in the outbox: the request describes this call as it is now (and the seed's
 * PBX asks the same way, with a response timeout the admin sets); the outbox stays a plain
 * provider queue whose history shows exactly the text that went out; and a message is accepted —
 * durable — only with its final text, so a restart never leaves a half-made SMS behind. The
 * caller hanging up meanwhile does not cancel the request: the agents' SMS is still wanted.
 */
class Sms extends Step<SmsConfig> {
  readonly kind = 'sms';

  async run(call: CallSession, { sms }: StepServices): Promise<StepResult> {
    const reached = Date.now();
    const c = this.config;
    const base = { callId: call.callId, description: c.description, provider: c.provider };
    const once = c.oncePerCall ? { callId: call.callId, key: this.where } : undefined;
    // Checked before the API request so a second visit costs the customer's API nothing; the
    // accept below is what actually guarantees "once".
    if (once && (await sms.hasOnce(once.callId, once.key))) {
      call.log.info({ step: this.where }, 'SMS already sent in this call');
      return 'next';
    }

    const targets: string[] = [];
    for (const to of c.alsoToCaller ? [...c.to, 'caller'] : c.to) {
      let number = to;
      if (to === 'caller') {
        const caller = callerAsRecipient(call.vars.caller, sms.defaultCountry);
        if (!caller.ok) {
          if (!targets.includes('caller')) {
            await sms.recordSkipped({ ...base, to: call.vars.caller, reason: caller.reason, sender: c.sender });
            call.log.info({ step: this.where, reason: caller.reason }, 'SMS to caller skipped');
          }
          targets.push('caller');
          continue;
        }
        number = caller.e164;
      }
      if (!targets.includes(number)) targets.push(number);
    }
    const numbers = targets.filter((t) => t !== 'caller');
    if (numbers.length === 0) return 'next';

    let text: string;
    let note: string | undefined;
    if (c.text !== undefined && typeof c.text !== 'string') {
      const api = c.text.fromApi;
      const got = await fetchSmsText(api, call.vars);
      if (got.ok) {
        text = got.text;
      } else if (api.onError === 'skip') {
        const reason = `text API failed (${got.reason}): skipped as configured`;
        for (const to of numbers) await sms.recordSkipped({ ...base, to, reason, sender: c.sender });
        call.log.warn({ step: this.where, reason: got.reason, latencyMs: got.latencyMs }, 'SMS skipped: the text API failed');
        return 'next';
      } else {
        text = this.fill(api.onError.text, call);
        note = `text API failed (${got.reason}): fallback text used`;
        call.log.warn({ step: this.where, reason: got.reason, latencyMs: got.latencyMs }, 'text API failed: fallback text used');
      }
    } else {
      text = this.fill(c.template ? sms.templates[c.template]! : c.text!, call);
    }

    const notBefore = reached + c.delay;
    const messages: NewSms[] = numbers.map((to) => ({ ...base, to, text, sender: c.sender, notBefore, ...(note ? { note } : {}) }));
    const { duplicate, ids, blocked } = await sms.accept(messages, once);
    call.log.info(
      { step: this.where, accepted: duplicate ? 0 : ids.length - blocked.length, blocked: blocked.length, duplicate, delayMs: c.delay },
      duplicate ? 'SMS already sent in this call' : 'SMS accepted',
    );
    return 'next';
  }

  private fill(template: string, call: CallSession): string {
    const { text, missing } = render(template, call.vars);
    if (missing.length) call.log.warn({ step: this.where, missing }, 'merge fields without a value');
    return text;
  }
}

export const sms = defineStep({
  kind: 'sms',
  description: 'Send an SMS through the durable outbox; the call goes on without waiting for the provider.',
  schema: smsSchema,
  create: (config, where) => new Sms(config, where),
});
