import { z } from 'zod';
import { createHttpProvider, httpProviderSchema } from './http-provider.js';
import type { SmsProvider } from './provider.js';
import { createTwilioProvider, twilioProviderSchema } from './twilio-provider.js';

/**
 * Every kind of SMS provider `sms.providers.<name>.kind` may name: its settings and how it is
 * built. A new provider is its module (schema with `kind: z.literal(…)`, a create function) and
 * one line in this table.
 */
const KINDS = [
  { schema: httpProviderSchema, create: createHttpProvider },
  { schema: twilioProviderSchema, create: createTwilioProvider },
] as const;

/** `kind` picks the provider; an error then names only the fields of that kind. */
export const smsProviderSchema = z.discriminatedUnion('kind', [KINDS[0].schema, ...KINDS.slice(1).map((k) => k.schema)]);
export type SmsProviderConfig = z.output<typeof smsProviderSchema>;

/** `receiptUrl`: where this provider's delivery receipts reach the service, when the media listener's publicUrl says. */
export function createProvider(name: string, config: SmsProviderConfig, opts: { receiptUrl?: string } = {}): SmsProvider {
  const kind = KINDS.find((k) => k.schema.shape.kind.value === config.kind)!;
  return kind.create(name, config as never, opts);
}

/** The public path of a provider's delivery receipts. */
export const receiptPath = (provider: string) => `/sms/receipts/${encodeURIComponent(provider)}`;
