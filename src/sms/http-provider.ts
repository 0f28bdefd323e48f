import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { duration, regex, timeout } from '../config/types.js';
import type { LinearRegex } from '../config/regex.js';
import type { FailureRules } from '../http/failure.js';
import {
  bodySchema,
  checkRequestConfig,
  encodingSchema,
  headersSchema,
  requestFieldsUsed,
  toRequestSpec,
  urlTemplate,
  type RequestSpec,
} from '../http/request.js';
import { buildAndSend } from '../http/send.js';
import { sendResultOf, type RetryPolicy, type SendResult, type SmsMessage, type SmsProvider } from './provider.js';

/**
 * The generic provider: any SMS API reachable with one templated HTTP request. The seed 000
 * provider (form POST of token, clientId, smsCode, message, phoneNumber; code 300 = quota) is
 * pure configuration of this kind.
 */

/** Merge fields a provider template may use. */
export const PROVIDER_FIELDS = ['to', 'message', 'text', 'sender', 'messageId'] as const;

export const retrySchema = z.strictObject({
  count: z.number().int().min(0).max(10).default(0),
  interval: timeout.default(5_000),
  /** Each further retry waits this many times longer; 1 keeps the seed's fixed interval. */
  backoff: z.number().min(1).max(10).default(1),
  maxInterval: duration.optional(),
});

export type RetryConfig = z.output<typeof retrySchema>;

export function toRetryPolicy(r: RetryConfig): RetryPolicy {
  const p: RetryPolicy = { count: r.count, intervalMs: r.interval, backoff: r.backoff };
  if (r.maxInterval !== undefined) p.maxIntervalMs = r.maxInterval;
  return p;
}

/** A sender ID or from-number: what the provider shows as the SMS's origin (S2). */
export const senderSchema = z.string().trim().min(1).max(20);

export const httpProviderSchema = z
  .strictObject({
    kind: z.literal('http'),
    url: urlTemplate,
    method: z.enum(['GET', 'POST', 'PUT']).default('POST'),
    encoding: encodingSchema.default('form'),
    headers: headersSchema.optional(),
    body: bodySchema.optional(),
    timeout: timeout.default(10_000),
    error: z
      .strictObject({
        match: regex.optional(),
        status: z.array(z.number().int().min(100).max(599)).optional(),
      })
      .optional(),
    success: z.strictObject({ match: regex }).optional(),
    retry: retrySchema.default({ count: 0, interval: 5_000, backoff: 1 }),
    /** The {sender} of a message whose step names none. */
    from: senderSchema.optional(),
    /** Pattern whose first capture group is the provider's id for the message. */
    messageIdMatch: regex.optional(),
  })
  .superRefine((v, ctx) => {
    checkRequestConfig(v, ctx);
    if (v.timeout <= 0) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'timeout must be more than 0' });
    const unknown = requestFieldsUsed(v).filter((f) => !(PROVIDER_FIELDS as readonly string[]).includes(f));
    for (const f of unknown) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown merge field {${f}}; a provider can use ${PROVIDER_FIELDS.map((n) => `{${n}}`).join(', ')}`,
      });
    }
  });

export type HttpProviderConfig = z.output<typeof httpProviderSchema>;

export interface HttpProviderOptions {
  /** Connection pool; defaults to the process-wide one. */
  dispatcher?: Dispatcher;
  /** Bytes of the answer read for classification. */
  maxBodyBytes?: number;
}

export function createHttpProvider(name: string, config: HttpProviderConfig, opts: HttpProviderOptions = {}): SmsProvider {
  const spec: RequestSpec = toRequestSpec(config);
  const rules: FailureRules = {
    errorMatch: config.error?.match,
    errorStatus: config.error?.status,
    successMatch: config.success?.match,
  };
  const retry = toRetryPolicy(config.retry);

  async function send(message: SmsMessage, signal?: AbortSignal): Promise<SendResult> {
    const vars = {
      to: message.to,
      message: message.text,
      text: message.text,
      sender: message.sender ?? config.from,
      messageId: message.messageId,
    };
    const sent = await buildAndSend(spec, vars, { dispatcher: opts.dispatcher, maxBodyBytes: opts.maxBodyBytes, signal, rules });
    const result = sendResultOf(sent);
    const id = sent.kind === 'response' && config.messageIdMatch ? extractId(config.messageIdMatch, sent.body) : undefined;
    if (id) result.providerMessageId = id;
    return result;
  }

  return { name, retry, timeoutMs: spec.timeoutMs, send };
}

function extractId(re: LinearRegex, body: string): string | undefined {
  const m = re.exec(body);
  return m?.[1] ?? undefined;
}
