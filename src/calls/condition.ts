import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { LinearRegex } from '../config/regex.js';
import { regex } from '../config/types.js';
import { normaliseNumber } from '../phone.js';
import { render, type Vars } from '../template.js';

/**
 * Conditions: the hooks' `when` (seed 000's 判定用コード / 判定用パターン: a value template and a
 * pattern), which every step takes too. Hooks and steps share this one module, so a change to how
 * patterns are read or run (config/types.ts `regex`) applies to both.
 */

/** `{ value: "{queue}", match: "/^support$/" }` */
export const valueMatchShape = {
  value: z.string().describe('a template, e.g. "{queue}" (seed: 判定用コード)'),
  match: regex.describe('seed: 判定用パターン'),
};
export const valueMatchSchema = z.object(valueMatchShape).strict();
export type ValueMatch = z.output<typeof valueMatchSchema>;

/** The rendered value, and whether the pattern matches it. */
export function valueMatches(cond: ValueMatch, vars: Vars): { ok: boolean; value: string } {
  const { text } = render(cond.value, vars);
  return { ok: cond.match.test(text), value: text };
}

/**
 * One shorthand entry: a value compared as written (numbers also as the same E.164 number), or a
 * pattern written `/…/`.
 */
type Entry = { exact: string } | { pattern: LinearRegex };

const scalar = z.union([z.string().min(1), z.number()]);
const entries = z.union([scalar, z.array(scalar).min(1)]).transform((v, ctx): Entry[] => {
  const out: Entry[] = [];
  for (const item of Array.isArray(v) ? v : [v]) {
    const s = String(item);
    if (!/^\/.*\/[a-z]*$/s.test(s)) {
      out.push({ exact: s });
      continue;
    }
    const parsed = regex.safeParse(s);
    if (parsed.success) out.push({ pattern: parsed.data });
    else for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
  }
  return out;
});

/**
 * A step's `when`: the hooks' value and pattern, and shorthands for what a stage is usually
 * chosen by: the queue the caller left (`{queue}`), the dialled number (`{did}`, else `{called}`)
 * and the caller's number (`{caller}`). Everything given must hold.
 */
export const stepConditionSchema = z
  .object({
    value: valueMatchShape.value.optional(),
    match: valueMatchShape.match.optional(),
    queue: entries.optional().describe('queue names (or /patterns/); the step runs only for callers from one of them'),
    did: entries.optional().describe('dialled numbers (or /patterns/); +81 50-1234-5678 and 05012345678 (with sms.defaultCountry JP) are the same'),
    caller: entries.optional().describe('caller numbers (or /patterns/), compared like did'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.value === undefined) !== (c.match === undefined)) {
      ctx.addIssue({ code: 'custom', path: [c.value === undefined ? 'value' : 'match'], message: 'value and match go together: a template and the pattern it must match' });
    }
    if (c.value === undefined && !c.queue && !c.did && !c.caller) {
      ctx.addIssue({ code: 'custom', message: 'a condition needs value and match, or one of queue, did, caller' });
    }
  })
  .describe('the step runs only when this holds; otherwise it is skipped and the log says why');
export type StepCondition = z.output<typeof stepConditionSchema>;

/** Which merge field each shorthand tests, and whether it holds phone numbers. */
const SHORTHANDS = [
  { key: 'queue', field: (v: Vars) => v.queue, numbers: false },
  { key: 'did', field: (v: Vars) => v.did || v.called, numbers: true },
  { key: 'caller', field: (v: Vars) => v.caller, numbers: true },
] as const;

export type ConditionResult = { ok: true } | { ok: false; reason: string };

/** Does the step's condition hold for this call? If not, the reason the log and the call events give. */
export function stepConditionHolds(cond: StepCondition, vars: Vars, defaultCountry?: CountryCode): ConditionResult {
  for (const { key, field, numbers } of SHORTHANDS) {
    const list = cond[key];
    if (!list) continue;
    const value = String(field(vars) ?? '');
    const norm = (s: string) => (numbers ? normaliseNumber(s, defaultCountry) : s);
    const hit = list.some((e) => {
      if ('pattern' in e) return e.pattern.test(value);
      return e.exact === value || (numbers && value !== '' && norm(e.exact) === norm(value));
    });
    // the caller's number stays out of the reason: it is logged at info level
    const shown = key === 'caller' ? key : `${key} "${value}"`;
    if (!hit) return { ok: false, reason: `${shown} is not ${list.length > 1 ? 'one of ' : ''}${list.map(show).join(', ')}` };
  }
  if (cond.value !== undefined && cond.match) {
    const r = valueMatches({ value: cond.value, match: cond.match }, vars);
    if (!r.ok) return { ok: false, reason: `"${cond.value}" is "${r.value}", which does not match ${String(cond.match)}` };
  }
  return { ok: true };
}

function show(e: Entry): string {
  return 'pattern' in e ? String(e.pattern) : e.exact;
}
