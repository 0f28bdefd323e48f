import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { Vars } from '../template.js';
import { classify, type Classification, type FailureRules } from './failure.js';
import { buildRequest, sendRequest, TransportError, type HttpMethod, type HttpResponse, type RequestSpec, type SendOptions, type TransportErrorKind } from './request.js';

/**
 * One outbound HTTP attempt, start to verdict: every feature that calls an HTTP endpoint (SMS
 * providers, the SMS text API, hooks, Salesforce, the routing API) goes through here, so a
 * timeout, a reset or a 503 reaches each of them already classified by the same rules, and none
 * keeps its own try/catch around the transport.
 *
 * It never throws: a request that got no answer, and our own failure while sending, come back as
 * results like any answer does.
 */

/** On top of sendRequest's options, so a deadline, a cancel and a body limit mean the same here. */
export interface SendAndClassifyOptions extends SendOptions {
  method: HttpMethod;
  url: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  /** The endpoint's own failure rules (error pattern, extra retry statuses…). */
  rules?: FailureRules;
}

interface Timed extends Classification {
  latencyMs: number;
}

/** The far end answered; the answer may still be a failure (see `outcome`). */
export interface SentResponse extends Timed, HttpResponse {
  kind: 'response';
}

/** No HTTP answer: see TransportErrorKind for what each kind says about the request. */
export interface SentTransport extends Timed {
  kind: 'transport';
  error: { kind: TransportErrorKind; message: string };
  message: string;
}

/** Our own code failed; the request may not have gone out at all. */
export interface SentThrown extends Timed {
  kind: 'thrown';
  error: unknown;
  message: string;
}

/** Also an AttemptResult of failure.ts, so it can be handed on to code that classifies attempts. */
export type Sent = SentResponse | SentTransport | SentThrown;

export async function sendAndClassify(opts: SendAndClassifyOptions): Promise<Sent> {
  const started = performance.now();
  try {
    const res = await sendRequest({ method: opts.method, url: opts.url, headers: opts.headers ?? {}, body: opts.body, missing: [] }, opts);
    const verdict = classify({ kind: 'response', status: res.status, headers: res.headers, body: res.body }, opts.rules);
    return { kind: 'response', ...verdict, ...res };
  } catch (e) {
    if (e instanceof TransportError) {
      const error = { kind: e.kind, message: e.message };
      return { kind: 'transport', ...classify({ kind: 'transport', error }, opts.rules), error, message: e.message, latencyMs: e.latencyMs };
    }
    return notSent(e, Math.round(performance.now() - started));
  }
}

/**
 * sendAndClassify for a request rendered from templates. A template that will not build is our
 * failure, not the endpoint's, yet the caller gets it as a result like any other: callers such
 * as SMS providers promise never to throw.
 */
export async function buildAndSend(spec: RequestSpec, vars: Vars, opts: Omit<SendAndClassifyOptions, 'method' | 'url' | 'headers' | 'body' | 'timeoutMs'>): Promise<Sent> {
  const started = performance.now();
  let built;
  try {
    built = buildRequest(spec, vars);
  } catch (e) {
    return notSent(e, Math.round(performance.now() - started));
  }
  return sendAndClassify({ ...built, timeoutMs: spec.timeoutMs, ...opts });
}

function notSent(error: unknown, latencyMs: number): SentThrown {
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'thrown', ...classify({ kind: 'thrown', error }), error, message, latencyMs };
}
