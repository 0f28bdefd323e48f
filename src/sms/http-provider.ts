import { createHmac } from 'node:crypto';
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
import { numberFields } from '../phone.js';
import {
  DELIVERY_STATUSES,
  deliveryFields,
  idempotencyHeader,
  sameSecret,
  sendResultOf,
  type ReceiptParse,
  type ReceiptRequest,
  type RetryPolicy,
  type SendResult,
  type SmsMessage,
  type SmsProvider,
} from './provider.js';

/**
 * The generic provider: any SMS API reachable with one templated HTTP request. The seed 000
 * provider (form POST of token, clientId, smsCode, message, phoneNumber; code 300 = quota) is
 * pure configuration of this kind.
 */

/** Merge fields a provider template may use. */
export const PROVIDER_FIELDS = ['to', 'to.e164', 'to.national', 'message', 'text', 'sender', 'messageId'] as const;

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

const FIELD_PATH = z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a field name, or a JSON path such as data.id');

/**
 * Delivery receipts of a provider reached by configuration: which fields of its callback carry
 * the message id, the state and an error code, how its states map onto ours, and how the callback
 * proves it comes from the provider (a shared secret in a header, or an HMAC of the raw body).
 */
const receiptSchema = z
  .strictObject({
    id: FIELD_PATH.describe("the provider's message id (what messageIdMatch took from its answer), or our {messageId} when the provider echoes it"),
    status: FIELD_PATH.describe('the delivery state'),
    error: FIELD_PATH.optional().describe('an error code, when there is one'),
    statuses: z
      .record(z.string(), z.enum(DELIVERY_STATUSES))
      .default({})
      .describe('provider state → queued, sent, delivered, undelivered or failed; a state already named so needs no line'),
    secret: z.strictObject({ header: z.string().regex(/^[A-Za-z0-9-]+$/).default('X-Receipt-Secret'), value: z.string().min(16, 'at least 16 characters') }).optional(),
    signature: z
      .strictObject({
        header: z.string().regex(/^[A-Za-z0-9-]+$/),
        key: z.string().min(16, 'at least 16 characters'),
        algorithm: z.enum(['sha256', 'sha1', 'sha512']).default('sha256'),
        encoding: z.enum(['hex', 'base64']).default('hex'),
        prefix: z.string().default('').describe('written before the digest, e.g. "sha256="'),
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.secret === undefined) === (v.signature === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a receipt endpoint is public: give it either secret (a shared secret in a header) or signature (an HMAC of the body)' });
    }
  });

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
    receipt: receiptSchema.optional().describe('delivery receipts at POST /sms/receipts/<provider>'),
    ...deliveryFields,
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
  spec.headers = { ...spec.headers, ...idempotencyHeader(config.idempotencyKey, spec.headers) };
  const rules: FailureRules = {
    errorMatch: config.error?.match,
    errorStatus: config.error?.status,
    successMatch: config.success?.match,
  };
  const retry = toRetryPolicy(config.retry);

  async function send(message: SmsMessage, signal?: AbortSignal): Promise<SendResult> {
    const vars = {
      // {to} is E.164 already; {to.national} is what a provider of one country may want instead
      ...numberFields({ to: message.to }, ['to']),
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

  const receiptConfig = config.receipt;
  const receipt = receiptConfig && ((req: ReceiptRequest) => readReceipt(receiptConfig, req));
  return { name, retry, timeoutMs: spec.timeoutMs, delivery: config.delivery, send, ...(receipt ? { receipt } : {}) };
}

type ReceiptConfig = z.output<typeof receiptSchema>;

function readReceipt(c: ReceiptConfig, req: ReceiptRequest): ReceiptParse {
  if (c.secret && !sameSecret(req.headers[c.secret.header.toLowerCase()] ?? '', c.secret.value)) {
    return { ok: false, status: 403, error: `${c.secret.header} does not match` };
  }
  if (c.signature) {
    const s = c.signature;
    const digest = s.prefix + createHmac(s.algorithm, s.key).update(req.body, 'utf8').digest(s.encoding);
    if (!sameSecret(req.headers[s.header.toLowerCase()] ?? '', digest)) return { ok: false, status: 403, error: `${s.header} does not match` };
  }
  const fields = receiptFields(req);
  if (!fields) return { ok: false, status: 400, error: 'the body is not the JSON its Content-Type says' };
  const id = fields(c.id);
  const providerStatus = fields(c.status);
  if (!id || !providerStatus) return { ok: false, status: 400, error: `a receipt has ${c.id} and ${c.status}` };
  const status = c.statuses[providerStatus] ?? (DELIVERY_STATUSES as readonly string[]).find((s) => s === providerStatus.toLowerCase());
  const errorCode = c.error ? fields(c.error) : undefined;
  return { ok: true, receipt: { messageId: id, providerStatus, ...(status ? { status: status as never } : {}), ...(errorCode ? { errorCode } : {}) } };
}

/** The callback's fields: JSON by a path, else form fields of the body, else the query (a GET callback). */
function receiptFields(req: ReceiptRequest): ((path: string) => string | undefined) | undefined {
  const type = req.headers['content-type'] ?? '';
  if (type.includes('json')) {
    let value: unknown;
    try {
      value = JSON.parse(req.body);
    } catch {
      return undefined;
    }
    return (path) => {
      let v: unknown = value;
      for (const part of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
      return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
    };
  }
  const form = new URLSearchParams(req.body);
  return (path) => form.get(path) ?? req.url.searchParams.get(path) ?? undefined;
}

function extractId(re: LinearRegex, body: string): string | undefined {
  const m = re.exec(body);
  return m?.[1] ?? undefined;
}
