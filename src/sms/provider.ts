import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Outcome } from '../http/failure.js';
import type { Sent } from '../http/send.js';

/**
 * What the outbox needs from an SMS provider. A provider makes one attempt per call and never
 * throws: the outbox owns retries, timing and the record of every attempt, so providers stay
 * small (a templated HTTP one, Twilio, …).
 */

export interface SmsMessage {
  /**
   * The outbox's stable id for this message: the same on every attempt, including the repeat
   * after a crash, so a provider that accepts an idempotency key can drop the duplicate.
   */
  messageId: string;
  /** E.164 recipient. */
  to: string;
  text: string;
  /** Sender ID or from-number, when the step sets one. */
  sender?: string;
}

export interface SendResult {
  outcome: Outcome;
  /** Short cause from the classification, e.g. "http-503", "error-match", "timeout". */
  reason: string;
  /** HTTP status, when an answer arrived. */
  status?: number;
  /** The start of the provider's answer (kept to 2 KiB in history). */
  body?: string;
  latencyMs: number;
  /** Transport or internal error text, when there was no usable answer. */
  error?: string;
  /** The provider's id for the message, when its answer carries one (for delivery receipts). */
  providerMessageId?: string;
  /** The provider asked us to wait this long before the next attempt. */
  retryAfterMs?: number;
}

/** What the outbox records of one HTTP attempt, the same for every provider that sends one. */
export function sendResultOf(sent: Sent): SendResult {
  if (sent.kind !== 'response') return { outcome: sent.outcome, reason: sent.reason, latencyMs: sent.latencyMs, error: sent.message };
  const result: SendResult = { outcome: sent.outcome, reason: sent.reason, status: sent.status, body: sent.body, latencyMs: sent.latencyMs };
  if (sent.retryAfterMs !== undefined) result.retryAfterMs = sent.retryAfterMs;
  return result;
}

export interface RetryPolicy {
  /** Further attempts after the first (seed 000: 2). */
  count: number;
  /** Wait before the first retry. */
  intervalMs: number;
  /** Each further retry waits this many times longer (1 = a fixed interval, the seed's rule). */
  backoff?: number;
  /** Upper bound of the growing wait. */
  maxIntervalMs?: number;
}

/**
 * What the SMS history records of a delivery receipt, in Twilio's words (which most providers'
 * states map onto): accepted by the carrier side (`queued`), handed to the network (`sent`), and
 * the final three.
 */
export const DELIVERY_STATUSES = ['queued', 'sent', 'delivered', 'undelivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A provider's delivery-receipt request as the service received it. */
export interface ReceiptRequest {
  method: string;
  url: URL;
  headers: Readonly<Record<string, string>>;
  body: string;
}

/** A receipt the provider module has authenticated and read. */
export interface DeliveryReceipt {
  /** The provider's id of the message (or the outbox's own id, when the provider echoes it). */
  messageId: string;
  /** The state as the provider wrote it. */
  providerStatus: string;
  /** Ours; undefined when the provider's state maps to none (logged, nothing changes). */
  status?: DeliveryStatus;
  errorCode?: string;
  /** When the provider says it happened (epoch ms), if it says. */
  reportedAt?: number;
}

/** Refused: 403 for a bad signature or secret, 400 for a request that is no receipt. */
export type ReceiptParse = { ok: true; receipt: DeliveryReceipt } | { ok: false; status: 400 | 403; error: string };

/**
 * What a provider promises when the outcome of an attempt is unknown: the request went out and no
 * answer came back (a timeout, a reset connection), or the process died while it was under way.
 * - `at-least-once`: it is sent again with the same message id (and Idempotency-Key), so a provider
 *   that keeps keys drops the repeat and one that does not may deliver twice;
 * - `at-most-once`: the message settles as `unknown` and is never repeated. Only answers that say
 *   the provider did not take the message (no connection, 429, 503) are retried.
 */
export const DELIVERY_MODES = ['at-least-once', 'at-most-once'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

/** The settings every provider kind has for it. */
export const deliveryFields = {
  delivery: z.enum(DELIVERY_MODES).default('at-least-once').describe('at-least-once (retry an unknown outcome with the same key) or at-most-once (mark it unknown)'),
  idempotencyKey: z
    .union([z.literal(false), z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name')])
    .default('Idempotency-Key')
    .describe('the header that carries the message id on every attempt; false sends none'),
};

/** The header (name → template) that carries the message id, unless the config's own headers set it. */
export function idempotencyHeader(name: string | false, headers: Readonly<Record<string, string>> = {}): Record<string, string> {
  if (name === false || Object.keys(headers).some((k) => k.toLowerCase() === name.toLowerCase())) return {};
  return { [name]: '{messageId}' };
}

/**
 * Under at-most-once, whether a failed attempt may be repeated: only when the provider cannot
 * have taken the message (it was never reached, or it said it did not process it).
 */
export function provablyNotSent(result: Pick<SendResult, 'reason' | 'status'>): boolean {
  return result.reason === 'connect' || result.status === 429 || result.status === 503;
}

export interface SmsProvider {
  readonly name: string;
  readonly retry: RetryPolicy;
  /** What happens to a message whose attempt's outcome is unknown; at-least-once when not given. */
  readonly delivery?: DeliveryMode;
  /**
   * Upper bound of one attempt. The outbox leases a message for this long (plus a margin) and
   * cancels the attempt when it passes; without it the outbox's own default applies.
   */
  readonly timeoutMs?: number;
  /** One attempt. Resolves with the classified result; cancelling through `signal` yields a retry. */
  send(message: SmsMessage, signal?: AbortSignal): Promise<SendResult>;
  /**
   * Authenticates and reads a delivery-receipt request (POST /sms/receipts/<provider>).
   * Optional: providers without receipts leave it out, and get no endpoint.
   */
  receipt?(request: ReceiptRequest): ReceiptParse;
  /** Releases connections the provider owns. */
  close?(): Promise<void>;
}

/** Compares a secret or signature a receipt carries with the expected one in constant time. */
export function sameSecret(given: string, expected: string): boolean {
  const x = Buffer.from(given);
  const y = Buffer.from(expected);
  return x.length === y.length && timingSafeEqual(x, y);
}
