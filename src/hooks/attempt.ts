import type { Dispatcher } from 'undici';
import { classify, type Outcome } from '../http/failure.js';
import { sendRequest, TransportError, type BuiltRequest } from '../http/request.js';
import { render, type Vars } from '../template.js';
import type { Hook } from './config.js';
import { extract } from './extract.js';
import { hookRequest, redactRequest, type LoggedRequest } from './hook-request.js';

/**
 * One try of one hook: render, send, classify with the one failure classifier (with the hook's
 * error rules: the seed's /300/, status classes, timeouts), and extract variables from an answer
 * that counts as ok. Shared by the durable worker and inline runs, so both log the same things.
 */

export interface AttemptReport {
  outcome: Outcome;
  reason: string;
  request: LoggedRequest;
  status?: number;
  responseHeaders?: Record<string, string>;
  body?: string;
  truncated?: boolean;
  latencyMs: number;
  error?: string;
  retryAfterMs?: number;
  extracted: Record<string, string>;
  notFound: string[];
}

export interface AttemptOptions {
  secrets: readonly string[];
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
  now?: number;
}

/** Renders the request without sending it (for the attempt row written before the send, and dry runs). */
export function prepare(hook: Hook, vars: Vars, runId: string, secrets: readonly string[], now?: number): { built: BuiltRequest; logged: LoggedRequest } {
  const built = hookRequest(hook, vars, runId, now);
  return { built, logged: redactRequest(built, secrets) };
}

export async function send(hook: Hook, built: BuiltRequest, logged: LoggedRequest, opts: AttemptOptions): Promise<AttemptReport> {
  const base = { request: logged, extracted: {}, notFound: [] as string[] };
  try {
    const res = await sendRequest(built, { timeoutMs: hook.request.timeout, signal: opts.signal, dispatcher: opts.dispatcher });
    const c = classify({ kind: 'response', status: res.status, headers: res.headers, body: res.body }, hook.rules);
    const ex = c.outcome === 'ok' && hook.extract.length ? extract(hook.extract, res.body) : { values: {}, notFound: [] };
    return {
      ...base,
      outcome: c.outcome,
      reason: c.reason,
      status: res.status,
      responseHeaders: res.headers,
      body: res.body,
      truncated: res.truncated,
      latencyMs: res.latencyMs,
      ...(c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : {}),
      extracted: ex.values,
      notFound: ex.notFound,
    };
  } catch (e) {
    if (e instanceof TransportError) {
      const c = classify({ kind: 'transport', error: { kind: e.kind, message: e.message } }, hook.rules);
      return { ...base, outcome: c.outcome, reason: c.reason, latencyMs: e.latencyMs, error: e.message };
    }
    return { ...base, outcome: 'unexpected', reason: 'exception', latencyMs: 0, error: e instanceof Error ? e.message : String(e) };
  }
}

/** The condition (CA2): the hook runs only when the rendered value matches. */
export function conditionHolds(hook: Hook, vars: Vars): { ok: boolean; value: string } {
  if (!hook.when) return { ok: true, value: '' };
  const { text } = render(hook.when.value, vars);
  hook.when.match.lastIndex = 0;
  return { ok: hook.when.match.test(text), value: text };
}
