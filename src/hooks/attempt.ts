import type { Dispatcher } from 'undici';
import type { Outcome } from '../http/failure.js';
import { redactRequest, type LoggedRequest } from '../http/redact.js';
import type { BuiltRequest } from '../http/request.js';
import { sendAndClassify } from '../http/send.js';
import { render, type Vars } from '../template.js';
import type { Hook } from './config.js';
import { extract } from './extract.js';
import { hookRequest } from './hook-request.js';

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
  const sent = await sendAndClassify({ ...built, timeoutMs: hook.request.timeout, signal: opts.signal, dispatcher: opts.dispatcher, rules: hook.rules });
  if (sent.kind !== 'response') {
    // Our own failure has no endpoint time to report.
    return { ...base, outcome: sent.outcome, reason: sent.reason, latencyMs: sent.kind === 'thrown' ? 0 : sent.latencyMs, error: sent.message };
  }
  const ex = sent.outcome === 'ok' && hook.extract.length ? extract(hook.extract, sent.body) : { values: {}, notFound: [] };
  return {
    ...base,
    outcome: sent.outcome,
    reason: sent.reason,
    status: sent.status,
    responseHeaders: sent.headers,
    body: sent.body,
    truncated: sent.truncated,
    latencyMs: sent.latencyMs,
    ...(sent.retryAfterMs !== undefined ? { retryAfterMs: sent.retryAfterMs } : {}),
    extracted: ex.values,
    notFound: ex.notFound,
  };
}

/** The condition (CA2): the hook runs only when the rendered value matches. */
export function conditionHolds(hook: Hook, vars: Vars): { ok: boolean; value: string } {
  if (!hook.when) return { ok: true, value: '' };
  const { text } = render(hook.when.value, vars);
  return { ok: hook.when.match.test(text), value: text };
}
