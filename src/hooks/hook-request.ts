import { createHmac } from 'node:crypto';
import { buildRequest, type BuiltRequest } from '../http/request.js';
import type { Vars } from '../template.js';
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
