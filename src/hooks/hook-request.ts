import { createHmac } from 'node:crypto';
import { buildRequest, type BuiltRequest } from '../http/request.js';
import { escapers, type Vars } from '../template.js';
import type { Hook } from './config.js';

/**
 * A hook's HTTP request: the admin's templates rendered over the call's variables (escaped for
 * where each value lands, by buildRequest), plus two headers every hook request carries:
 *
 * - `Idempotency-Key`: the run's id, the same on every attempt and after a restart, so an endpoint
 *   that keeps the keys it has seen can drop a repeat (a retry after a lost answer);
 * - `Call-Actions-Signature: t=<unix seconds>,v1=<hex>` when the hook has a `secret`: the
 *   HMAC-SHA256 of `<t>.<body>` (of `<t>.<url>` for a request without a body), the jambonz/Stripe
 *   convention; the receiver recomputes it and rejects old timestamps, which stops replays.
 */

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const SIGNATURE_HEADER = 'call-actions-signature';

export function hookRequest(hook: Hook, vars: Vars, runId: string, now: number = Date.now()): BuiltRequest {
  const built = buildRequest(
    {
      url: hook.request.url,
      method: hook.request.method,
      encoding: hook.request.encoding,
      headers: hook.request.headers,
      body: hook.request.body,
      xmlRoot: hook.request.xmlRoot,
      timeoutMs: hook.request.timeout,
    },
    vars,
  );
  if (!Object.keys(built.headers).some((k) => k.toLowerCase() === IDEMPOTENCY_HEADER)) built.headers[IDEMPOTENCY_HEADER] = runId;
  if (hook.secret) built.headers[SIGNATURE_HEADER] = signature(hook.secret, built.body ?? built.url, now);
  return built;
}

export function signature(secret: string, payload: string, now: number = Date.now()): string {
  const t = Math.floor(now / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** For receivers (and tests): checks a signature header against the payload, within a tolerance. */
export function verifySignature(secret: string, header: string, payload: string, toleranceS = 300, now: number = Date.now()): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(now / 1000 - t) > toleranceS || !parts.v1) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex');
  return expected.length === parts.v1.length && timingSafe(expected, parts.v1);
}

function timingSafe(a: string, b: string): boolean {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface LoggedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Merge fields that had no value and were sent empty. */
  missing?: string[];
}

/** Header names whose whole value is a credential, whatever it looks like. */
const CREDENTIAL_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|x-auth-token)$|token|secret|password/i;
const REDACTED = '[redacted]';

/**
 * What the execution log keeps of a request (CA6): everything an admin needs to see what was
 * sent, minus credentials. Secrets are replaced in every form they can take once escaped into a
 * URL, a form, JSON or XML, since the env value itself never appears there verbatim.
 */
export function redactRequest(built: BuiltRequest, secrets: readonly string[]): LoggedRequest {
  const variants = [...new Set(secrets.filter((s) => s.length >= 4).flatMap((s) => [s, escapers.url(s), escapers.form(s), escapers.json(s), escapers.xml(s)]))]
    // longest first, so a secret containing another is replaced whole
    .sort((a, b) => b.length - a.length);
  const scrub = (text: string) => variants.reduce((t, v) => t.split(v).join(REDACTED), text);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(built.headers)) headers[k] = CREDENTIAL_HEADER.test(k) ? REDACTED : scrub(v);
  const out: LoggedRequest = { method: built.method, url: scrub(built.url), headers };
  if (built.body !== undefined) out.body = scrub(built.body);
  if (built.missing.length) out.missing = built.missing;
  return out;
}
