import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Agent } from './undici.js';
import { exchange, type Cancellation } from './exchange.js';
import { errorCode, transportFailure } from './failure.js';
import { z } from 'zod';
import { timeout } from '../config/types.js';
import { compileTemplate, escapers, fieldsOf, render, type CompiledTemplate, type Escape, type Vars } from '../template.js';

/**
 * A request an admin describes with templates (SMS providers, call-action hooks, the routing API).
 * Building renders every template and escapes each merge-field value for the place it lands, so
 * a caller ID can never add a form field, break out of a JSON string or open an XML element.
 * Sending reuses pooled connections and always ends: an overall deadline covers connect, headers
 * and body, and only a bounded prefix of the answer is kept.
 */

export type Encoding = 'form' | 'json' | 'query' | 'xml';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestSpec {
  /** Template; merge-field values are percent-encoded. */
  url: string;
  method: HttpMethod;
  encoding: Encoding;
  /** Header templates; merge-field values are percent-encoded where HTTP cannot carry them. */
  headers?: Readonly<Record<string, string>>;
  /**
   * Either field → value template (each value encoded whole for the encoding), or one template
   * for the whole body in which only the merge-field values are escaped (the admin wrote the
   * syntax around them).
   */
  body?: Readonly<Record<string, string>> | string;
  /** Root element when a field record is sent as XML. */
  xmlRoot?: string;
  timeoutMs: number;
}

export interface BuiltRequest {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Merge fields that had no value (rendered empty); callers log them. */
  missing: string[];
}

const CONTENT_TYPES: Record<Exclude<Encoding, 'query'>, string> = {
  form: 'application/x-www-form-urlencoded',
  json: 'application/json; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
};

const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** Escaping of merge-field values inside a whole-body template, by encoding. */
const BODY_ESCAPE: Record<Encoding, Escape> = {
  form: escapers.form,
  query: escapers.form,
  json: escapers.json,
  xml: escapers.xml,
};

export function buildRequest(spec: RequestSpec, vars: Vars): BuiltRequest {
  return compileRequest(spec)(vars);
}

/**
 * The request's templates read once, for a request sent on every call (the routing API's): what
 * does not depend on the call (a URL or header without merge fields, the content type, the check
 * of XML names) is worked out here, not per call. A template that cannot be built throws when it
 * is built, as buildRequest does.
 */
export function compileRequest(spec: RequestSpec): (vars: Vars, own?: Vars) => BuiltRequest {
  const url = compileTemplate(spec.url);
  const headers = Object.entries(spec.headers ?? {}).map(([name, template]) => [name, compileTemplate(template)] as const);
  const body =
    spec.body === undefined
      ? undefined
      : typeof spec.body === 'string'
        ? compileTemplate(spec.body)
        : Object.entries(spec.body).map(([k, v]) => [k, compileTemplate(v)] as const);
  const xmlRoot = spec.xmlRoot ?? 'request';
  const badXmlName =
    spec.encoding === 'xml' && Array.isArray(body) ? [xmlRoot, ...body.map(([k]) => k)].find((name) => !XML_NAME.test(name)) : undefined;
  // a form's or query's field names are the admin's, the same on every call: escaped once
  const formKeys = Array.isArray(body) && (spec.encoding === 'form' || spec.encoding === 'query') ? body.map(([k]) => escapers.form(k)) : [];
  const contentType = spec.encoding !== 'query' && !headers.some(([k]) => k.toLowerCase() === 'content-type') ? CONTENT_TYPES[spec.encoding] : undefined;

  // `own`: fields that come before `vars` (see CompiledTemplate)
  return (vars, own) => {
    const missing = new Set<string>();
    const r = (template: CompiledTemplate, escape: Escape): string => {
      const out = template(vars, escape, own);
      for (const name of out.missing) missing.add(name);
      return out.text;
    };
    let builtUrl = r(url, escapers.url);
    const builtHeaders: Record<string, string> = {};
    // Merge-field values are percent-encoded where HTTP cannot carry them (escapers.header); the
    // admin's own text is checked at load (headersSchema).
    for (const [name, template] of headers) builtHeaders[name] = r(template, escapers.header);

    let builtBody: string | undefined;
    if (body !== undefined) {
      let encoded: string;
      if (!Array.isArray(body)) encoded = r(body as CompiledTemplate, BODY_ESCAPE[spec.encoding]);
      else {
        if (badXmlName !== undefined) throw new Error(`"${badXmlName}" is not a valid XML element name`);
        encoded = encodeFields(spec.encoding, body, formKeys, (v) => r(v, escapers.none), xmlRoot);
      }
      if (spec.encoding === 'query') {
        if (encoded !== '') builtUrl = appendQuery(builtUrl, encoded);
      } else {
        builtBody = encoded;
      }
    }

    if (builtBody !== undefined && contentType !== undefined) builtHeaders['content-type'] = contentType;
    return { method: spec.method, url: builtUrl, headers: builtHeaders, body: builtBody, missing: [...missing] };
  };
}

function encodeFields(
  encoding: Encoding,
  fields: ReadonlyArray<readonly [string, CompiledTemplate]>,
  formKeys: readonly string[],
  value: (template: CompiledTemplate) => string,
  xmlRoot: string,
): string {
  switch (encoding) {
    case 'form':
    case 'query': {
      let out = '';
      for (let i = 0; i < fields.length; i++) out += (i ? '&' : '') + formKeys[i] + '=' + escapers.form(value(fields[i]![1]));
      return out;
    }
    case 'json':
      return JSON.stringify(Object.fromEntries(fields.map(([k, v]) => [k, value(v)])));
    case 'xml': {
      // element names are checked once, by compileRequest
      let inner = '';
      for (const [k, v] of fields) inner += `<${k}>${escapers.xml(value(v))}</${k}>`;
      return `<?xml version="1.0" encoding="UTF-8"?><${xmlRoot}>${inner}</${xmlRoot}>`;
    }
  }
}

function appendQuery(url: string, query: string): string {
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const sep = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return base + sep + query + (hash === -1 ? '' : url.slice(hash));
}

// ---------------------------------------------------------------------------------------------
// Sending

export type TransportErrorKind = 'timeout' | 'connect' | 'aborted' | 'other';

/**
 * The request got no HTTP answer. `connect` means it never reached the server (safe to repeat);
 * `timeout` and `other` may have been processed by the server; `aborted` is our own shutdown.
 */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly kind: TransportErrorKind,
    message: string,
    readonly latencyMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface SendOptions {
  /** Deadline for the whole exchange: connect, headers and body. */
  timeoutMs: number;
  /** Connection pool to use; defaults to one shared keep-alive pool per process. */
  dispatcher?: Dispatcher;
  /** Bytes of response body kept; the rest is discarded. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Cancels the request (shutdown, a hang-up); reported as a TransportError of kind `aborted`. */
  signal?: Cancellation;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** UTF-8 text of at most maxBodyBytes bytes. */
  body: string;
  truncated: boolean;
  latencyMs: number;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

let sharedAgent: Agent | undefined;

/** The process-wide pool: keep-alive connections per origin, so a burst reuses sockets. */
export function sharedDispatcher(): Dispatcher {
  sharedAgent ??= new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000, connections: 32 });
  return sharedAgent;
}

export async function sendRequest(built: BuiltRequest, opts: SendOptions): Promise<HttpResponse> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let timedOut = false;
  try {
    const { origin, path } = target(built.url);
    // exchange(), not undici's request(): its answer stream, async iterator and signal listeners
    // were a third of undici's CPU per request, for bodies read whole anyway
    const res = await exchange(
      opts.dispatcher ?? sharedDispatcher(),
      { method: built.method, origin, path, headers: built.headers, body: built.body },
      {
        timeoutMs: opts.timeoutMs,
        timeoutError: () => {
          timedOut = true;
          return new Error(`no complete answer within ${opts.timeoutMs} ms`);
        },
        maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
        signal: opts.signal,
      },
    );
    return { status: res.status, headers: flattenHeaders(res.headers), body: res.text, truncated: res.truncated, latencyMs: elapsed() };
  } catch (e) {
    if (opts.signal?.aborted && !timedOut) {
      throw new TransportError('aborted', 'request cancelled', elapsed(), { cause: e });
    }
    throw toTransportError(e, timedOut, elapsed());
  }
}

// Most requests go to a URL that is the same for every call (the routing API's, a provider's):
// each is parsed once. Bounded, since a URL may carry a caller's number in its query.
const TARGETS_KEPT = 64;
const targets = new Map<string, { origin: string; path: string }>();

function target(href: string): { origin: string; path: string } {
  let t = targets.get(href);
  if (!t) {
    const url = new URL(href);
    t = { origin: url.origin, path: url.pathname + url.search };
    if (targets.size >= TARGETS_KEPT) targets.clear();
    targets.set(href, t);
  }
  return t;
}

function toTransportError(e: unknown, timedOut: boolean, latencyMs: number): TransportError {
  const err = e as { message?: string; cause?: { message?: string } };
  const code = errorCode(e);
  const message = err?.cause?.message ?? err?.message ?? String(e);
  const failure = timedOut ? 'timeout' : transportFailure(e);
  if (failure === 'timeout') {
    return new TransportError('timeout', `no complete answer within the timeout (${latencyMs} ms)`, latencyMs, { cause: e });
  }
  if (failure === 'connect') {
    return new TransportError('connect', `${code}: ${message}`, latencyMs, { cause: e });
  }
  // a connection lost under a sent request stays 'other': like it, the request may have been processed
  return new TransportError('other', code ? `${code}: ${message}` : message, latencyMs, { cause: e });
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  // for-in, not Object.entries(): no array per header (undici's headers object is a plain one)
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Config

/** YAML turns `clientId: 12345` into a number; a template is its text. */
const templateValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const PLACEHOLDER_PROBE = 'x';

/** A URL template that is an http(s) URL once its merge fields are filled. */
export const urlTemplate = z.string().superRefine((v, ctx) => {
  const probe = render(v, Object.fromEntries(fieldsOf(v).map((f) => [f, PLACEHOLDER_PROBE]))).text;
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(probe).protocol);
  } catch {
    ok = false;
  }
  if (!ok) ctx.addIssue({ code: 'custom', message: `"${v}" is not an http:// or https:// URL` });
});

export const encodingSchema = z.enum(['form', 'json', 'query', 'xml']);
export const headersSchema = z.record(
  z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'invalid header name'),
  templateValue.refine(
    (v) => /^[\t\x20-\x7E]*$/.test(v),
    'a header value can only carry printable ASCII: write other text through a merge field (it is percent-encoded) or percent-encode it yourself',
  ),
);
export const bodySchema = z.union([z.record(z.string().min(1), templateValue), z.string()]);

/**
 * The request part of a config entry, for the SMS provider, hook and routing schemas to spread
 * into their own objects (each narrows `method` as it needs).
 */
export const requestFields = {
  url: urlTemplate,
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
  encoding: encodingSchema.default('form'),
  headers: headersSchema.optional(),
  body: bodySchema.optional(),
  timeout: timeout.default(10_000),
};

export interface RequestConfig {
  url: string;
  method: HttpMethod;
  encoding: Encoding;
  headers?: Record<string, string>;
  body?: Record<string, string> | string;
  timeout: number;
}

/** Checks that apply to any request config; attach with `.superRefine(checkRequestConfig)`. */
export function checkRequestConfig(v: RequestConfig, ctx: z.RefinementCtx): void {
  if (v.method === 'GET' && v.body !== undefined && v.encoding !== 'query') {
    ctx.addIssue({ code: 'custom', path: ['encoding'], message: 'a GET request carries its fields in the query: use encoding: query' });
  }
  if (v.encoding === 'xml' && v.body !== undefined && typeof v.body !== 'string') {
    for (const k of Object.keys(v.body)) {
      if (!XML_NAME.test(k)) ctx.addIssue({ code: 'custom', path: ['body', k], message: `"${k}" is not a valid XML element name` });
    }
  }
}

export function toRequestSpec(v: RequestConfig): RequestSpec {
  return { url: v.url, method: v.method, encoding: v.encoding, headers: v.headers, body: v.body, timeoutMs: v.timeout };
}

/** Every merge field a request config refers to, for validation against the known ones. */
export function requestFieldsUsed(v: Pick<RequestConfig, 'url' | 'headers' | 'body'>): string[] {
  const templates = [v.url, ...Object.values(v.headers ?? {})];
  if (typeof v.body === 'string') templates.push(v.body);
  else if (v.body) templates.push(...Object.values(v.body));
  return [...new Set(templates.flatMap(fieldsOf))];
}
