import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { duration } from '../config/types.js';
import { headersSchema, urlTemplate, type RequestSpec } from '../http/request.js';
import { buildAndSend } from '../http/send.js';
import type { Vars } from '../template.js';

/**
 * S8: the SMS text comes from the customer's own API (TeleCube's "Bramka SMS" API option).
 *
 * The request carries the seed's fields — from_number (the caller), to_number (the number they
 * called), call_id — plus the admin's fixed custom fields, which may use {merge} fields. GET sends
 * them in the query; POST as a form by default (what the seed's PBX customers' scripts read with
 * $_POST and the like), or as JSON with `encoding: json`.
 *
 * The answer is JSON and `field` names where the text is (a dotted path such as data.sms.text);
 * without `field` the whole answer, trimmed, is the text (a plain-text API). Anything else —
 * an HTTP error, a timeout, a refused connection, JSON that does not parse, a missing or empty
 * field, a text longer than one concatenated SMS can be — is a failure with a short reason, and
 * the step applies `onError`.
 */

export const SEED_FIELDS = ['from_number', 'to_number', 'call_id'] as const;

/** Longest text a concatenated SMS carries at Twilio; longer answers are surely not an SMS text. */
export const MAX_TEXT_CHARS = 1600;

const templateValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const textApiSchema = z
  .strictObject({
    url: urlTemplate,
    method: z.enum(['GET', 'POST']).default('GET'),
    encoding: z.enum(['form', 'json']).optional().describe('how a POST carries its fields (default form); GET always uses the query'),
    timeout: duration.default(3_000).describe('the longest the caller waits for the text'),
    field: z
      .string()
      .regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, 'a field name or a dotted path such as data.text')
      .optional()
      .describe('where the text is in the JSON answer; without it the whole answer is the text'),
    fields: z.record(z.string().min(1), templateValue).default({}).describe('fixed custom fields sent with every request'),
    headers: headersSchema.optional(),
    onError: z
      .union([z.literal('skip'), z.strictObject({ text: z.string().min(1) })])
      .default('skip')
      .describe('when the API fails: skip the SMS, or send this text instead'),
  })
  .superRefine((v, ctx) => {
    if (v.timeout <= 0 || v.timeout > 30_000) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'timeout must be more than 0 and at most 30s: a caller waits for it' });
    if (v.method === 'GET' && v.encoding !== undefined) ctx.addIssue({ code: 'custom', path: ['encoding'], message: 'a GET request carries its fields in the query; encoding applies to POST' });
    for (const k of Object.keys(v.fields)) {
      if ((SEED_FIELDS as readonly string[]).includes(k)) ctx.addIssue({ code: 'custom', path: ['fields', k], message: `${k} is always sent; pick another name` });
    }
  });

export type TextApiConfig = z.output<typeof textApiSchema>;

export type TextApiResult =
  | { ok: true; text: string; latencyMs: number }
  | { ok: false; reason: string; latencyMs: number; status?: number };

export interface TextApiOptions {
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/** Never throws: every failure comes back as `{ ok: false, reason }`. */
export async function fetchSmsText(config: TextApiConfig, vars: Vars, opts: TextApiOptions = {}): Promise<TextApiResult> {
  const spec: RequestSpec = {
    url: config.url,
    method: config.method,
    encoding: config.method === 'GET' ? 'query' : (config.encoding ?? 'form'),
    headers: { accept: config.field ? 'application/json' : 'text/plain, application/json', ...config.headers },
    // Templates over the call's merge fields; values are escaped for the encoding by buildRequest.
    body: { from_number: '{caller}', to_number: '{called}', call_id: '{callId}', ...config.fields },
    timeoutMs: config.timeout,
  };
  const sent = await buildAndSend(spec, vars, { dispatcher: opts.dispatcher, maxBodyBytes: 16 * 1024, signal: opts.signal });
  if (sent.kind === 'transport') {
    return { ok: false, reason: sent.reason === 'timeout' ? `timeout after ${config.timeout} ms` : `${sent.reason}: ${sent.message}`, latencyMs: sent.latencyMs };
  }
  if (sent.kind === 'thrown') return { ok: false, reason: `exception: ${sent.message}`, latencyMs: sent.latencyMs };
  if (sent.outcome !== 'ok') return { ok: false, reason: sent.reason, status: sent.status, latencyMs: sent.latencyMs };
  if (sent.truncated) return { ok: false, reason: 'answer too long', status: sent.status, latencyMs: sent.latencyMs };
  const text = config.field ? fromJson(sent.body, config.field) : { text: sent.body.trim() };
  if ('error' in text) return { ok: false, reason: text.error, status: sent.status, latencyMs: sent.latencyMs };
  if (text.text === '') return { ok: false, reason: config.field ? `field "${config.field}" is empty` : 'empty answer', status: sent.status, latencyMs: sent.latencyMs };
  if ([...text.text].length > MAX_TEXT_CHARS) return { ok: false, reason: `text longer than ${MAX_TEXT_CHARS} characters`, status: sent.status, latencyMs: sent.latencyMs };
  return { ok: true, text: text.text, latencyMs: sent.latencyMs };
}

function fromJson(body: string, path: string): { text: string } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { error: 'malformed JSON' };
  }
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, key)) {
      return { error: `no field "${path}" in the answer` };
    }
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return { text: value.trim() };
  if (typeof value === 'number' && Number.isFinite(value)) return { text: String(value) };
  return { error: `field "${path}" is not text` };
}
