/**
 * Reads the query of a log or history endpoint (`/sms/history`, `/hooks/log`, `/routes/log`; the
 * CLI builds the same query from its flags). Every mistake is a RangeError that starts with the
 * parameter's name, which the server answers with 400 and the CLI turns into `--name: …`: a typo
 * in a filter must never silently widen the query to everything.
 *
 *   const r = readQuery(url.searchParams, ['callId', 'status', 'since', 'until', 'limit', 'offset']);
 *   const status = r.oneOf('status', STATUSES);
 *   return { callId: r.text('callId'), status, since: r.time('since'), limit: r.count('limit') };
 *
 * Each value is checked when it is read, so the caller's order of reads is the order in which
 * errors are found.
 */

export interface QueryReader {
  /** The parameter as given, or undefined when absent. */
  text(name: string): string | undefined;
  /** Epoch milliseconds, given as such or as a date Date.parse reads (ISO 8601). */
  time(name: string): number | undefined;
  /** A whole number: digits only, so no sign, fraction or exponent. */
  count(name: string): number | undefined;
  /** Every value given, repeated (`?s=a&s=b`) or comma-separated (`?s=a,b`), each one of `allowed`; [] when none. */
  oneOf<T extends string>(name: string, allowed: readonly T[]): T[];
}

/** What every log and history filter has: the call, a time range and a page. */
export interface PageFilter {
  callId?: string;
  /** at or after this epoch ms */
  since?: number;
  /** before this epoch ms */
  until?: number;
  limit?: number;
  offset?: number;
}

/** The last time a JavaScript Date holds. */
const MAX_TIME_MS = 8.64e15;

export const PAGE_PARAMS = ['callId', 'since', 'until', 'limit', 'offset'] as const;

/**
 * A log endpoint's query: its own parameters (`own`) beside the page parameters every log has.
 * `page()` reads those; the endpoint reads its own with the reader.
 */
export function readLogQuery(q: URLSearchParams, own: readonly string[]): QueryReader & { page(): PageFilter } {
  const r = readQuery(q, [...own, ...PAGE_PARAMS]);
  return {
    ...r,
    page: () => ({ callId: r.text('callId'), since: r.time('since'), until: r.time('until'), limit: r.count('limit'), offset: r.count('offset') }),
  };
}

/** Refuses a parameter not in `known` at once, then reads the others on demand. */
export function readQuery(q: URLSearchParams, known: readonly string[]): QueryReader {
  for (const k of q.keys()) if (!known.includes(k)) throw new RangeError(`unknown parameter "${k}" (known: ${known.join(', ')})`);
  const text = (name: string) => q.get(name) ?? undefined;
  return {
    text,
    time(name) {
      const v = text(name);
      if (v === undefined) return undefined;
      const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
      if (!Number.isFinite(n)) throw new RangeError(`${name}: not a date or epoch milliseconds: ${v}`);
      if (n > MAX_TIME_MS) throw new RangeError(`${name}: ${v} is out of range (dates end at ${new Date(MAX_TIME_MS).toISOString()})`);
      return n;
    },
    count(name) {
      const v = text(name);
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v)) throw new RangeError(`${name}: not a whole number: ${v}`);
      const n = Number(v);
      // beyond 2^53 the value is no longer the number written, and SQLite's integers end at 2^63
      if (!Number.isSafeInteger(n)) throw new RangeError(`${name}: ${v} is out of range (at most ${Number.MAX_SAFE_INTEGER})`);
      return n;
    },
    oneOf<T extends string>(name: string, allowed: readonly T[]): T[] {
      const values = q.getAll(name).flatMap((s) => s.split(',')).filter((s) => s !== '');
      const bad = values.filter((s) => !(allowed as readonly string[]).includes(s));
      if (bad.length) throw new RangeError(`${name}: unknown ${bad.join(', ')} (known: ${allowed.join(', ')})`);
      return values as T[];
    },
  };
}
