import { createRequire } from 'node:module';

/*
 * fast-xml-parser's CommonJS entry is one bundled file; its ES module entry is its source tree, some
 * forty modules that every service kept in memory whether or not its APIs ever answer XML (Node 20,
 * 5.12: heap +0.35 MB and RSS +0.6 MB for the bundle, +1.3 and +2.8 for the modules). Same release,
 * same parser.
 */
const { XMLParser, XMLValidator } = createRequire(import.meta.url)('fast-xml-parser') as typeof import('fast-xml-parser');

/**
 * The customer API's answer (seed 004): `{status, result, data, redirect}` as JSON, or the same
 * fields as child elements of one XML root element. Anything else is malformed, and the caller
 * goes to the fallback: the parser never throws and never lets a value of the wrong shape through.
 */
export interface RouteAnswer {
  status: 'success' | 'error';
  result?: string;
  data?: string;
  redirect?: string;
  callerName?: string;
}

export type AnswerFormat = 'auto' | 'json' | 'xml';

export type ParsedAnswer = { ok: true; answer: RouteAnswer } | { ok: false; reason: string };

/** Longer values are no answer a caller should hear; they are refused rather than cut. */
export const MAX_FIELD_CHARS = 4000;

const xmlParser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
  maxNestedTags: 8,
});

export function parseAnswer(body: string, opts: { contentType?: string; format?: AnswerFormat; callerNameField?: string | false } = {}): ParsedAnswer {
  const format = opts.format ?? 'auto';
  const text = body.replace(/^\uFEFF/, '').trim();
  if (text === '') return { ok: false, reason: 'empty body' };
  const type = (opts.contentType ?? '').toLowerCase();
  let kind: 'json' | 'xml';
  if (format !== 'auto') kind = format;
  else if (text.startsWith('{')) kind = 'json';
  else if (text.startsWith('<')) kind = 'xml';
  else if (type.includes('json')) kind = 'json';
  else if (type.includes('xml')) kind = 'xml';
  else return { ok: false, reason: 'neither JSON nor XML' };

  let record: Record<string, unknown>;
  try {
    const r = kind === 'json' ? fromJson(text) : fromXml(text);
    if (typeof r === 'string') return { ok: false, reason: r };
    record = r;
  } catch (e) {
    return { ok: false, reason: `not well-formed ${kind.toUpperCase()}: ${String((e as Error)?.message ?? e).slice(0, 120)}` };
  }
  return fromRecord(record, opts.callerNameField === undefined ? 'name' : opts.callerNameField);
}

function fromJson(text: string): Record<string, unknown> | string {
  const v: unknown = JSON.parse(text);
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'the JSON answer is not an object';
  return v as Record<string, unknown>;
}

function fromXml(text: string): Record<string, unknown> | string {
  // Entity definitions are how XML bombs work; a routing answer never needs one.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) return 'XML with a DOCTYPE is refused';
  const valid = XMLValidator.validate(text);
  if (valid !== true) return `not well-formed XML: ${valid.err.msg}`;
  const doc = xmlParser.parse(text) as unknown;
  if (!doc || typeof doc !== 'object') return 'no XML root element';
  const roots = Object.keys(doc);
  if (roots.length !== 1) return 'the XML answer has more than one root element';
  const root = (doc as Record<string, unknown>)[roots[0]!];
  // <response/> or <response>text</response>: no fields at all
  if (!root || typeof root !== 'object' || Array.isArray(root)) return 'the XML root element has no fields';
  return root as Record<string, unknown>;
}

function field(record: Record<string, unknown>, name: string): { value?: string; error?: string } {
  if (!Object.hasOwn(record, name)) return {};
  const v = record[name];
  if (v === null || v === undefined || v === '') return {};
  if (typeof v === 'number' && Number.isFinite(v)) return { value: String(v) };
  if (typeof v !== 'string') return { error: `"${name}" is not a text value` };
  if (v.length > MAX_FIELD_CHARS) return { error: `"${name}" is longer than ${MAX_FIELD_CHARS} characters` };
  return { value: v };
}

function fromRecord(record: Record<string, unknown>, callerNameField: string | false): ParsedAnswer {
  const get = (name: string) => field(record, name);
  const status = get('status');
  if (status.error) return { ok: false, reason: status.error };
  const s = status.value?.trim().toLowerCase();
  if (s !== 'success' && s !== 'error') return { ok: false, reason: status.value === undefined ? 'no status' : `status "${status.value.slice(0, 40)}" is neither success nor error` };
  const answer: RouteAnswer = { status: s };
  for (const name of ['result', 'data', 'redirect'] as const) {
    const f = get(name);
    if (f.error) return { ok: false, reason: f.error };
    if (f.value !== undefined) answer[name] = name === 'data' ? f.value : f.value.trim();
  }
  if (callerNameField) {
    const f = get(callerNameField);
    // A bad caller name is dropped, not fatal: the route itself may be fine.
    if (f.value !== undefined) answer.callerName = f.value;
  }
  return { ok: true, answer };
}
