/**
 * The one place that decides what an attempt's result means, like Wazo webhookd's
 * services/helpers.py: every HTTP-calling feature (SMS providers, hooks, routing) classifies
 * through here so "retry", "give up" and "our bug" mean the same thing everywhere.
 *
 * - ok:          the far end accepted the request.
 * - retry:       a transient failure; the same request may succeed later.
 * - final:       the far end refused it and repeating it will not help (bad credentials, 4xx).
 * - unexpected:  our own code threw; not retried, because repeating a bug repeats it.
 */

import type { TransportErrorKind } from './request.js';

export type Outcome = 'ok' | 'retry' | 'final' | 'unexpected';

/** A RegExp of our own, or an admin's pattern (a LinearRegex: linear time on any answer). */
export interface TextTest {
  test(text: string): boolean;
}

export interface FailureRules {
  /** A response body matching this is a transient failure (seed 000: /300/, quota exceeded). */
  errorMatch?: TextTest;
  /** Statuses that are transient failures for this endpoint, on top of 408, 429 and 5xx. */
  errorStatus?: readonly number[];
  /** When set, a 2xx answer counts as ok only if its body matches. */
  successMatch?: TextTest;
  /**
   * Default true. False for an endpoint that must not see a request twice: a timed-out request
   * may have been processed, so it is given up ("final") instead of repeated.
   */
  retryOnTimeout?: boolean;
}

export type AttemptResult =
  | { kind: 'response'; status: number; headers?: Readonly<Record<string, string>>; body: string }
  | { kind: 'transport'; error: { kind: TransportErrorKind; message: string } }
  | { kind: 'thrown'; error: unknown };

export interface Classification {
  outcome: Outcome;
  /** Short machine-readable cause, e.g. "http-503", "error-match", "timeout". */
  reason: string;
  /** From Retry-After, when the server said how long to wait. */
  retryAfterMs?: number;
}

/**
 * How a request that got no answer failed, from the error undici (or Node's socket, or our own
 * deadline) gave; undefined for anything else. The one list of each kind of code, for every
 * caller that must tell them apart (outbound requests here, ARI requests in calls/runner.ts).
 *
 * - timeout:          no complete answer in time; the request may have been carried out.
 * - connect:          the connection was never made, so the request never reached the server.
 * - connection-lost:  the connection closed under a sent request; it may have been carried out.
 */
export type TransportFailure = 'timeout' | 'connect' | 'connection-lost';

const TIMED_OUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN',
  // undici's own connect deadline: no socket yet, so nothing was sent
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_CONNECT',
]);
// undici's codes, which asterisk/ari-ws-rest.ts gives a lost WebSocket too, and the OS's when the
// socket's error reaches us unwrapped
const CONNECTION_LOST_CODES: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNRESET', 'EPIPE']);

/** The code of an error, or of its cause: fetch() and some wrappers put the socket's error there. */
export function errorCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | null | undefined;
  const code = err?.code ?? err?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

export function transportFailure(e: unknown): TransportFailure | undefined {
  // TimeoutError: asterisk/backoff.ts's deadlines, and AbortSignal.timeout()'s DOMException
  if ((e as { name?: unknown } | null | undefined)?.name === 'TimeoutError') return 'timeout';
  const code = errorCode(e);
  if (code === undefined) return undefined;
  if (TIMED_OUT_CODES.has(code)) return 'timeout';
  if (CONNECT_CODES.has(code) || code.startsWith('ERR_TLS') || code.includes('CERT')) return 'connect';
  if (CONNECTION_LOST_CODES.has(code)) return 'connection-lost';
  return undefined;
}

export function classify(result: AttemptResult, rules: FailureRules = {}, now: number = Date.now()): Classification {
  switch (result.kind) {
    case 'thrown':
      return { outcome: 'unexpected', reason: 'exception' };
    case 'transport':
      if (result.error.kind === 'timeout' && rules.retryOnTimeout === false) return { outcome: 'final', reason: 'timeout' };
      return { outcome: 'retry', reason: result.error.kind };
    case 'response':
      return classifyResponse(result.status, result.headers ?? {}, result.body, rules, now);
  }
}

function classifyResponse(
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string,
  rules: FailureRules,
  now: number,
): Classification {
  const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), now);
  const retry = (reason: string): Classification =>
    retryAfterMs === undefined ? { outcome: 'retry', reason } : { outcome: 'retry', reason, retryAfterMs };

  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return retry(`http-${status}`);
  if (rules.errorStatus?.includes(status)) return retry(`http-${status}`);
  // The admin's error pattern outranks the status: it is how they said "this answer is transient"
  // for a provider that reports throttling in a body, whatever status comes with it.
  if (rules.errorMatch && test(rules.errorMatch, body)) return retry('error-match');
  if (status >= 200 && status <= 299) {
    if (rules.successMatch && !test(rules.successMatch, body)) return { outcome: 'final', reason: 'no-success-match' };
    return { outcome: 'ok', reason: `http-${status}` };
  }
  // 1xx leftovers, redirects (not followed: a provider that moves must be reconfigured) and 4xx.
  return { outcome: 'final', reason: `http-${status}` };
}

function test(re: TextTest, text: string): boolean {
  // A shared RegExp with the g or y flag keeps lastIndex between calls; the result must not
  // depend on what was classified before.
  if (re instanceof RegExp) re.lastIndex = 0;
  return re.test(text);
}

function header(headers: Readonly<Record<string, string>>, name: string): string | undefined {
  // for-in, not Object.entries(): no array per header, on every classified answer
  for (const k in headers) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Date.parse accepts "-5" as a year; an HTTP-date always names its month.
  if (!/[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
