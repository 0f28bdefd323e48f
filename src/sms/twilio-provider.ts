import { createHmac } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { httpUrl, timeout } from '../config/types.js';
import type { FailureRules } from '../http/failure.js';
import type { RequestSpec } from '../http/request.js';
import { buildAndSend } from '../http/send.js';
import { retrySchema, senderSchema, toRetryPolicy } from './http-provider.js';
import { deliveryFields, idempotencyHeader, sameSecret, sendResultOf, type DeliveryStatus, type ReceiptParse, type ReceiptRequest, type SendResult, type SmsMessage, type SmsProvider } from './provider.js';

/**
 * The built-in Twilio provider (S10): one form POST to the Messages resource per attempt,
 * authenticated with HTTP Basic (Account SID : Auth Token).
 *
 * How answers are read, from Twilio's documented contract:
 * - 201 with the Message resource: accepted; its `sid` (SM…) is kept for delivery receipts.
 * - 429 / error code 20429: "never processed and always safe to retry", so retried with a growing
 *   wait, honouring Retry-After when present. The code is matched in the body too, so the same
 *   rule holds whatever status a proxy in between turns it into.
 * - 5xx and timeouts: retried, as every provider is (the shared classifier).
 * - any other 4xx (21211 invalid To, 21603 no sender, 20003 bad credentials…): final, because the
 *   same request will be refused again.
 *
 * Delivery receipts: every send carries `StatusCallback`, and Twilio POSTs each status change
 * there (form fields MessageSid, MessageStatus, ErrorCode) signed with `X-Twilio-Signature`:
 * base64 HMAC-SHA1, keyed by the Auth Token, of the callback URL followed by every POST field's
 * name and value in name order. The URL is the one we gave Twilio, not the one the request
 * arrived at (a proxy in between changes that). Twilio may sign it with or without the default
 * port, as its own helper library allows.
 */

export const TWILIO_API = 'https://api.twilio.com';

export const twilioProviderSchema = z
  .strictObject({
    kind: z.literal('twilio'),
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'an Account SID is AC and 32 hex digits'),
    authToken: z.string().min(1),
    /** Sender for steps that name none: a Twilio number in E.164, or an alphanumeric sender ID. */
    from: senderSchema.optional(),
    messagingServiceSid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'a Messaging Service SID is MG and 32 hex digits').optional(),
    statusCallback: httpUrl
      .optional()
      .describe("where Twilio sends delivery receipts (this service's /sms/receipts/<provider>, as Twilio reaches it); default: the media listener's publicUrl + /sms/receipts/<provider>"),
    /** Overridable for tests and for Twilio's regional edges. */
    baseUrl: httpUrl.default(TWILIO_API),
    timeout: timeout.default(10_000),
    retry: retrySchema.default({ count: 3, interval: 1_000, backoff: 2, maxInterval: 60_000 }),
    ...deliveryFields,
  })
  .superRefine((v, ctx) => {
    if (v.from === undefined && v.messagingServiceSid === undefined) {
      // Twilio would refuse every message of a step without `sender` (error 21603).
      ctx.addIssue({ code: 'custom', message: 'give from (a Twilio number or sender ID) or messagingServiceSid' });
    }
    if (v.timeout <= 0) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'timeout must be more than 0' });
  });

export type TwilioProviderConfig = z.output<typeof twilioProviderSchema>;

export interface TwilioProviderOptions {
  dispatcher?: Dispatcher;
  /** This provider's receipt URL made from the media listener's publicUrl, used when `statusCallback` is not set. */
  receiptUrl?: string;
}

/** MessageStatus → ours. `read` (WhatsApp, RCS) is past delivered; `canceled` never goes out. */
const TWILIO_STATUSES: Record<string, DeliveryStatus> = {
  accepted: 'queued',
  scheduled: 'queued',
  queued: 'queued',
  sending: 'sent',
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  canceled: 'failed',
};

const RULES: FailureRules = { errorMatch: /"code"\s*:\s*20429\b/ };

export function createTwilioProvider(name: string, config: TwilioProviderConfig, opts: TwilioProviderOptions = {}): SmsProvider {
  const base = config.baseUrl.replace(/\/+$/, '');
  const statusCallback = config.statusCallback ?? opts.receiptUrl;
  const auth = 'Basic ' + Buffer.from(`${config.accountSid}:${config.authToken}`, 'utf8').toString('base64');

  async function send(message: SmsMessage, signal?: AbortSignal): Promise<SendResult> {
    const from = message.sender ?? config.from;
    // Values go in as merge-field values, never as templates, so braces in a text stay text.
    const body: Record<string, string> = { To: '{to}', Body: '{text}' };
    if (from !== undefined) body.From = '{from}';
    if (config.messagingServiceSid !== undefined) body.MessagingServiceSid = '{service}';
    if (statusCallback !== undefined) body.StatusCallback = '{callback}';
    const spec: RequestSpec = {
      url: `${base}/2010-04-01/Accounts/{account}/Messages.json`,
      method: 'POST',
      encoding: 'form',
      headers: { authorization: '{auth}', accept: 'application/json', ...idempotencyHeader(config.idempotencyKey) },
      body,
      timeoutMs: config.timeout,
    };
    const vars = { to: message.to, text: message.text, messageId: message.messageId, from, service: config.messagingServiceSid, callback: statusCallback, account: config.accountSid, auth };
    const sent = await buildAndSend(spec, vars, { dispatcher: opts.dispatcher, signal, rules: RULES });
    const result = sendResultOf(sent);
    if (sent.kind !== 'response') return result;
    const answer = parseJson(sent.body);
    if (sent.outcome === 'ok') {
      if (typeof answer?.sid === 'string') result.providerMessageId = answer.sid;
    } else if (typeof answer?.code === 'number') {
      result.reason = `${sent.reason} code ${answer.code}`;
    }
    return result;
  }

  function receipt(req: ReceiptRequest): ReceiptParse {
    if (statusCallback === undefined) return { ok: false, status: 403, error: 'no statusCallback URL is configured, so no receipt can be verified' };
    const fields = new URLSearchParams(req.body);
    const given = req.headers['x-twilio-signature'] ?? '';
    if (!given || !signatureUrls(statusCallback).some((url) => sameSecret(twilioSignature(config.authToken, url, fields), given))) {
      return { ok: false, status: 403, error: 'X-Twilio-Signature does not match' };
    }
    const sid = fields.get('MessageSid') ?? fields.get('SmsSid');
    const providerStatus = fields.get('MessageStatus') ?? fields.get('SmsStatus');
    if (!sid || !providerStatus) return { ok: false, status: 400, error: 'a status callback has MessageSid and MessageStatus' };
    const errorCode = fields.get('ErrorCode') || undefined;
    return { ok: true, receipt: { messageId: sid, providerStatus, status: TWILIO_STATUSES[providerStatus], ...(errorCode ? { errorCode } : {}) } };
  }

  return { name, retry: toRetryPolicy(config.retry), timeoutMs: config.timeout, delivery: config.delivery, send, receipt };
}

/** Twilio's request signature: base64 HMAC-SHA1 of the URL and the sorted fields. */
function twilioSignature(authToken: string, url: string, fields: URLSearchParams): string {
  const names = [...new Set(fields.keys())].sort();
  let data = url;
  for (const n of names) for (const v of fields.getAll(n).sort()) data += n + v;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** The URL as configured, and (when it names none) with the scheme's default port written out. */
function signatureUrls(url: string): string[] {
  const u = new URL(url);
  // URL leaves a default port out of .port: an empty one means the URL's host may be signed either way
  if (u.port) return [url];
  return [url, url.replace(u.host, `${u.hostname}:${u.protocol === 'https:' ? '443' : '80'}`)];
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
