import { z } from 'zod';
import { LinearRegex } from './regex.js';
import { getCountries, parsePhoneNumberWithError, type CountryCode } from 'libphonenumber-js/max';

/**
 * Value types shared by every config section. Each parses the form an admin writes ("5s",
 * "/300/i", "+81501234567") into what the code uses, with an error message that says what was
 * expected; the loader adds file, line and field.
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest duration any field takes (Node fires a timer over ~24.8 days at once, after 1 ms). */
export const MAX_DURATION_MS = 24 * 3_600_000;
/** The longest a request, a prompt or a wait for the caller may take (a timeout, an interval). */
export const MAX_TIMEOUT_MS = 10 * 60_000;

/** 90000 → "90s", 600000 → "10m", for error messages and docs. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/**
 * "500ms", "5s", "2m", "1h", or a bare number of seconds → milliseconds, at most `maxMs`: a
 * longer one is an error at load (not a timer that fires at once, nor a wait of weeks from a
 * number written in milliseconds where seconds were meant).
 */
export function durationUpTo(maxMs: number) {
  return z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
    let ms: number;
    if (typeof v === 'number') ms = Math.round(v * 1000);
    else {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (e.g. 500ms, 5s, 2m, 90d)` });
        return z.NEVER;
      }
      ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
    }
    if (!(ms <= maxMs)) {
      ctx.addIssue({ code: 'custom', message: `${typeof v === 'number' ? `${v} (seconds)` : `"${v}"`} is longer than the ${formatDuration(maxMs)} this field allows` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A duration of at most 24h (MAX_DURATION_MS). */
export const duration = durationUpTo(MAX_DURATION_MS);
/** A timeout or a wait between attempts: at most 10m (MAX_TIMEOUT_MS). */
export const timeout = durationUpTo(MAX_TIMEOUT_MS);

/** Counts with no natural limit of their own (a rate limit's messages, a run order): at most this. */
export const MAX_COUNT = 1_000_000;

/**
 * "/pattern/flags" or a bare pattern → a LinearRegex (linear time on any input, see regex.ts); an
 * invalid pattern, or one using what RE2 cannot run (backreferences, lookaround), is a config error.
 */
export const regex = z.string().transform((v, ctx) => {
  try {
    return LinearRegex.parse(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** A phone number in E.164 (+ and country code), checked against the numbering plan. */
export const e164 = z.string().transform((v, ctx) => toE164(v, ctx));

/** An SMS recipient: the word `caller`, or an E.164 number. */
export const recipient = z.string().transform((v, ctx) => (v === 'caller' ? v : toE164(v, ctx)));

function toE164(v: string, ctx: z.RefinementCtx): string {
  try {
    const n = parsePhoneNumberWithError(v);
    if (v.trim().startsWith('+') && n.isValid()) return n.number;
  } catch {
    /* reported below */
  }
  ctx.addIssue({ code: 'custom', message: `"${v}" is not a valid phone number in E.164 form (e.g. +48221131415), nor "caller"` });
  return z.NEVER;
}

const COUNTRIES = new Set<string>(getCountries());

/** An ISO 3166 alpha-2 country code libphonenumber knows (JP, PL, TR, US…). */
export const countryCode = z
  .string()
  .refine((c) => COUNTRIES.has(c), 'an ISO 3166 country code such as JP, PL, TR, US')
  .transform((c) => c as CountryCode);

export const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

export type Duration = z.output<typeof duration>;

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** "500MB", "2GB", "64kB", or a bare number of bytes → bytes. */
export const byteSize = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?b)?\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (e.g. 500MB, 2GB)` });
    return z.NEVER;
  }
  return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!);
});
