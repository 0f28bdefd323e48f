import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { z } from 'zod';
import { countryCode, durationUpTo, MAX_COUNT } from '../config/types.js';
import { statement, type Queryable } from '../store/port.js';
import type { Migration } from '../store/port.js';

/**
 * Fraud and cost limits (S11, beyond the seed). SMS pumping works by making a service text
 * premium-rate or foreign numbers many times; each rule here caps one way of doing that.
 *
 * Every count comes from the store, inside the accept transaction, so a restart, a second process
 * on the same database, or a burst of calls accepted in the same millisecond cannot reset or
 * outrun a limit. What counts is every message accepted for sending (pending, sending, sent and
 * failed — a failed send may still have cost money or reached the handset), never the skipped or
 * blocked rows, so a blocked flood does not keep a number blocked forever.
 */

/** a rate window may span a month (744h): it is a look back in the store, not a timer */
const window = durationUpTo(31 * 24 * 3_600_000).refine((ms) => ms > 0, 'a window must be longer than 0');

const rate = z.strictObject({
  max: z.number().int().min(0).max(MAX_COUNT).describe('messages allowed within the window'),
  window: window.describe('sliding window, e.g. 1h'),
});

export const smsLimitsSchema = z
  .strictObject({
    perRecipient: rate.optional().describe('at most `max` SMS to any one number within `window`'),
    perPrefix: z
      .array(
        z.strictObject({
          prefix: z.string().regex(/^\+\d{1,15}$/, 'a prefix is + and digits, e.g. +882 or +4870'),
          ...rate.shape,
        }),
      )
      .default([])
      .describe('at most `max` SMS to all numbers starting with `prefix` within `window`'),
    allowCountries: z
      .array(countryCode)
      .min(1)
      .optional()
      .describe('only numbers of these countries (ISO 3166 codes) get SMS'),
    dailyCapPerStep: z
      .number()
      .int()
      .min(0)
      .max(MAX_COUNT)
      .optional()
      .describe('at most this many SMS per step description in any 24 hours'),
  })
  .describe('fraud and cost limits; a refused SMS is recorded with status "blocked"');

export type SmsLimits = z.output<typeof smsLimitsSchema>;

export const DAY_MS = 24 * 3_600_000;

export const limitMigrations: readonly Migration[] = [
  {
    id: 'sms/003-limit-indexes',
    up: `CREATE INDEX sms_messages_description ON sms_messages (description, created_at);`,
    postgres: `CREATE INDEX sms_messages_description ON sms_messages (description, created_at);`,
  },
];

// `unknown` may have reached the recipient, so it counts against a cap like a sent one
const COUNTED = `status IN ('pending', 'sending', 'sent', 'failed', 'unknown')`;

const sql = {
    recipient: statement<[string, number], { n: number }>(
      `SELECT COUNT(*) AS n FROM sms_messages WHERE recipient = ? AND created_at > ? AND ${COUNTED}`,
    ),
    // A range on the recipient index instead of LIKE, which SQLite would not serve from it.
    prefix: statement<[string, string, number], { n: number }>(
      `SELECT COUNT(*) AS n FROM sms_messages WHERE recipient >= ? AND recipient < ? AND created_at > ? AND ${COUNTED}`,
    ),
    description: statement<[string, number], { n: number }>(
      `SELECT COUNT(*) AS n FROM sms_messages WHERE description = ? AND created_at > ? AND ${COUNTED}`,
    ),
};

/**
 * Why this message must not be sent, naming the rule as it is written in the config, or
 * undefined when every limit allows it. Call inside the transaction that inserts the message.
 */
export async function checkLimits(
  tx: Queryable,
  limits: SmsLimits,
  message: { to: string; description: string },
  now: number,
): Promise<string | undefined> {
  if (limits.allowCountries) {
    const country = parsePhoneNumberFromString(message.to)?.country;
    if (!country || !limits.allowCountries.includes(country)) {
      return `blocked by sms.limits.allowCountries: ${country ?? 'no country'} is not in [${limits.allowCountries.join(', ')}]`;
    }
  }
  if (limits.perRecipient) {
    const { max, window: w } = limits.perRecipient;
    const n = (await sql.recipient.get(tx, message.to, now - w))!.n;
    if (n >= max) return `blocked by sms.limits.perRecipient: ${n} SMS to this number within ${human(w)} (max ${max})`;
  }
  for (const [i, rule] of limits.perPrefix.entries()) {
    if (!message.to.startsWith(rule.prefix)) continue;
    const n = (await sql.prefix.get(tx, rule.prefix, upperBound(rule.prefix), now - rule.window))!.n;
    if (n >= rule.max) {
      return `blocked by sms.limits.perPrefix[${i}] (${rule.prefix}): ${n} SMS to ${rule.prefix}… within ${human(rule.window)} (max ${rule.max})`;
    }
  }
  if (limits.dailyCapPerStep !== undefined) {
    const n = (await sql.description.get(tx, message.description, now - DAY_MS))!.n;
    if (n >= limits.dailyCapPerStep) {
      return `blocked by sms.limits.dailyCapPerStep: ${n} SMS from step "${message.description}" in the last 24 hours (max ${limits.dailyCapPerStep})`;
    }
  }
  return undefined;
}

/** The smallest string above every string that starts with `prefix`. */
function upperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function human(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
