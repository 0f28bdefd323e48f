import { z } from 'zod';
import { valueMatchSchema, type ValueMatch } from '../calls/condition.js';
import { duration, MAX_COUNT, regex, timeout } from '../config/types.js';
import { BASE_FIELDS, CALL_EVENT_KINDS, EVENT_FIELDS, type CallEventKind } from '../asterisk/call-event-types.js';
import type { FailureRules } from '../http/failure.js';
import {
  bodySchema,
  checkRequestConfig,
  encodingSchema,
  headersSchema,
  requestFieldsUsed,
  urlTemplate,
  type Encoding,
  type RequestConfig,
} from '../http/request.js';
import { fieldsOf } from '../template.js';
import type { CountryCode } from 'libphonenumber-js';
import { normaliseNumber } from '../phone.js';
import { parseExtractor, type Extractor } from './extract.js';

/**
 * The `hooks:` section (BIZTEL's call actions, CA1–CA5). One entry is one API call: on which event
 * (`on`), for which dialled numbers (`numbers`), in which order among hooks on the same event
 * (`order`), under which condition (`when`), what request (`request`), what to take from the answer
 * (`extract`), what answer is an error (`error`) and how often to try again (`retry`).
 *
 * `on: inline` hooks run only where a stage's `hook` step names them, while the caller waits.
 */

export const HOOK_TRIGGERS = [...CALL_EVENT_KINDS, 'inline'] as const;
export type HookTrigger = (typeof HOOK_TRIGGERS)[number];

const NAME = /^[A-Za-z0-9_.-]+$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** The seed sets only a Content-Type header; the escaping follows from it. */
function encodingFor(headers: Record<string, string> | undefined, method: string): Encoding {
  const type = Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1]?.toLowerCase() ?? '';
  if (type.includes('json')) return 'json';
  if (type.includes('xml')) return 'xml';
  if (type.includes('x-www-form-urlencoded')) return 'form';
  return method === 'GET' || method === 'DELETE' ? 'query' : 'form';
}

const requestSchema = z
  .object({
    url: urlTemplate,
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    encoding: encodingSchema.optional().describe('default: from the Content-Type header, else form (query for GET)'),
    headers: headersSchema.optional(),
    body: bodySchema.optional().describe('field → template, or one template for the whole body'),
    xmlRoot: z.string().regex(XML_NAME, 'an XML element name').optional(),
    timeout: timeout.default(10_000).describe('the seed\'s タイムアウト判定 (seconds, or 500ms / 5s)'),
  })
  .strict()
  .transform((v) => ({ ...v, encoding: v.encoding ?? encodingFor(v.headers, v.method) }))
  .superRefine((v, ctx) => checkRequestConfig(v as RequestConfig, ctx));

const statusRule = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]xx$/i, 'a status such as 503 or a class such as 4xx'),
]);

const errorSchema = z
  .object({
    match: regex.optional().describe('an answer whose body matches is an error (seed: /300/)'),
    status: z.array(statusRule).optional().describe('statuses or classes (4xx) that are errors to retry, beyond 408, 429 and 5xx'),
    timeout: z.boolean().default(true).describe('retry after a timeout (false: a timeout fails the hook at once)'),
  })
  .strict();

const retrySchema = z
  .object({
    count: z.number().int().min(0).max(20).describe('retries after the first attempt (seed: 2)'),
    interval: timeout.describe('wait between attempts (seed: 5s)'),
  })
  .strict();

const extractorSchema = z.string().transform((v, ctx) => {
  try {
    return parseExtractor(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const hookEntry = z
  .object({
    name: z.string().regex(NAME, 'letters, digits, ".", "-" and "_"').optional().describe('how the log and `hooks test` name it'),
    on: z.enum(HOOK_TRIGGERS).describe('the event kind (seed: イベント種別); inline: only where a `hook` step names it'),
    numbers: z
      .array(z.union([z.string().min(1), z.number()]).transform(String))
      .min(1)
      .optional()
      .describe('the dialled numbers (DIDs) it applies to (seed: 連携対象電話番号); default: every number'),
    order: z.number().int().min(-MAX_COUNT).max(MAX_COUNT).optional().describe('run order among hooks on the same event (seed: 実行順); default: file order'),
    when: valueMatchSchema.optional(),
    request: requestSchema,
    extract: z.record(z.string().regex(VAR_NAME, 'a variable name: letters, digits and _'), extractorSchema).optional(),
    error: errorSchema.optional(),
    retry: retrySchema.optional(),
    secret: z.string().min(16, 'at least 16 characters').optional().describe('signs each request (HMAC-SHA256, Call-Actions-Signature header)'),
    memo: z.string().optional().describe('free text (seed: メモ)'),
  })
  .strict();

export type HookInput = z.input<typeof hookEntry>;

export interface Hook {
  name: string;
  /** Position in the file, for messages and as the tie-break of `order`. */
  index: number;
  on: HookTrigger;
  numbers?: string[];
  order: number;
  when?: ValueMatch;
  request: RequestConfig & { xmlRoot?: string };
  extract: Array<{ name: string; from: Extractor }>;
  rules: FailureRules;
  retry: { count: number; intervalMs: number };
  secret?: string;
  memo?: string;
}

/** Names a hook may not extract into: the call's own fields would be overwritten. */
const RESERVED = new Set<string>([...BASE_FIELDS, ...Object.values(EVENT_FIELDS).flat(), 'stage', 'queue']);

/** "4xx" → 400…499, so the one classifier keeps taking plain status lists. */
function expandStatuses(rules: ReadonlyArray<number | string>): number[] {
  const out = new Set<number>();
  for (const r of rules) {
    if (typeof r === 'number') out.add(r);
    else for (let s = Number(r[0]) * 100; s < Number(r[0]) * 100 + 100; s++) out.add(s);
  }
  return [...out];
}

export const hooksSchema = z
  .array(hookEntry)
  .transform((list): Hook[] =>
    list.map((h, index) => ({
      name: h.name ?? `${h.on}-${index + 1}`,
      index,
      on: h.on,
      ...(h.numbers ? { numbers: h.numbers } : {}),
      order: h.order ?? index,
      ...(h.when ? { when: h.when } : {}),
      request: h.request,
      extract: Object.entries(h.extract ?? {}).map(([name, from]) => ({ name, from })),
      rules: {
        ...(h.error?.match ? { errorMatch: h.error.match } : {}),
        ...(h.error?.status ? { errorStatus: expandStatuses(h.error.status) } : {}),
        retryOnTimeout: h.error?.timeout ?? true,
      },
      retry: { count: h.retry?.count ?? 0, intervalMs: h.retry?.interval ?? 0 },
      ...(h.secret ? { secret: h.secret } : {}),
      ...(h.memo ? { memo: h.memo } : {}),
    })),
  )
  .superRefine((hooks, ctx) => {
    const seen = new Map<string, number>();
    const extracted = new Set(hooks.flatMap((h) => h.extract.map((e) => e.name)));
    for (const h of hooks) {
      const at = (...p: PropertyKey[]) => [h.index, ...p];
      const first = seen.get(h.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: at('name'), message: `hook name "${h.name}" is also used by hooks[${first}]` });
      seen.set(h.name, h.index);
      for (const e of h.extract) {
        if (RESERVED.has(e.name)) ctx.addIssue({ code: 'custom', path: at('extract', e.name), message: `"${e.name}" is one of the call's own fields; choose another name` });
      }
      const known = knownFields(h.on, extracted);
      if (!known) continue;
      const used = [...requestFieldsUsed(h.request), ...(h.when ? fieldsOf(h.when.value) : [])];
      const unknown = [...new Set(used.filter((f) => !known.has(f)))];
      if (unknown.length) {
        ctx.addIssue({
          code: 'custom',
          path: at('request'),
          message: `unknown merge field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `{${f}}`).join(', ')} for a ${h.on} hook (known: ${[...known].sort().join(', ')})`,
        });
      }
    }
  });

/**
 * The merge fields a hook on `on` can use, or undefined when any name may be valid (stage
 * arguments come from the dialplan, which the config cannot see).
 */
export function knownFields(on: HookTrigger, extracted: ReadonlySet<string> = new Set()): Set<string> | undefined {
  if (on === 'inline' || on === 'stage.entered') return undefined;
  return new Set<string>([...BASE_FIELDS, ...EVENT_FIELDS[on as CallEventKind], ...extracted]);
}

/**
 * Does the hook apply to calls to this DID (CA1)? No `numbers` means every number. A DID matches
 * as written or as the same E.164 number ("+81 50-1234-5678", "0501234567" with JP, "0081…").
 */
export function targetsNumber(hook: Hook, did: string | undefined, defaultCountry?: CountryCode): boolean {
  if (!hook.numbers) return true;
  if (!did) return false;
  const want = normaliseNumber(did, defaultCountry);
  return hook.numbers.some((n) => n === did || normaliseNumber(n, defaultCountry) === want);
}

/** Hooks for one event, in the order they run: `order`, then file order. */
export function hooksFor(hooks: readonly Hook[], on: HookTrigger): Hook[] {
  return hooks.filter((h) => h.on === on).sort((a, b) => a.order - b.order || a.index - b.index);
}

/** A `hook` step must name an `on: inline` hook: an event hook runs by itself, not in a stage. */
export function checkHookSteps(
  stages: Readonly<Record<string, ReadonlyArray<{ kind: string; config: unknown }>>>,
  hooks: readonly Hook[],
  ctx: z.RefinementCtx,
): void {
  const inline = hooks.filter((h) => h.on === 'inline').map((h) => h.name);
  for (const [stage, steps] of Object.entries(stages)) {
    steps.forEach((spec, i) => {
      if (spec.kind !== 'hook') return;
      const name = (spec.config as { name: string }).name;
      const found = hooks.find((h) => h.name === name);
      if (found?.on === 'inline') return;
      const message = found
        ? `hook "${name}" runs on ${found.on}; a hook step needs a hook with on: inline`
        : `unknown hook "${name}" (inline hooks: ${inline.join(', ') || 'none'})`;
      ctx.addIssue({ code: 'custom', path: ['stages', stage, i, 'hook'], message });
    });
  }
}

/** The config sections the hooks feature owns. */
export const HOOKS_SECTIONS = { hooks: hooksSchema.default([]).describe('call actions: HTTP requests on call events (docs/hooks.md)') };
