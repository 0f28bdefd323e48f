import type Database from 'better-sqlite3';
import { encodeRows, Rows } from './port.js';

/**
 * Secrets never reach the store. Every string bound to a statement (an SMS attempt's answer, a
 * hook run's request and answer, the routing log, Salesforce requests) passes through `scrub`
 * before it is written, so a provider that echoes a token back in its answer, or a request body
 * that carries one, is stored with `[redacted]` in its place. Done where values are bound rather
 * than in each feature, so a log added later cannot forget it.
 *
 * Two kinds of secret are removed:
 * - the known values (read from the environment for secret-looking config fields), as written
 *   and as URL, form, JSON and XML escape them;
 * - the value of any credential-looking field, whatever it is: `"access_token": "…"`,
 *   `password=…`, `<token>…</token>`, `Authorization: Bearer …`.
 */

export const REDACTED = '[redacted]';

const FIELD = String.raw`(?:access_?token|refresh_?token|id_?token|auth_?token|token|api_?key|apikey|client_?secret|secret|password|passwd|authorization|x-api-key)`;
const PATTERNS: Array<[RegExp, string]> = [
  // JSON: "token": "value"
  [new RegExp(String.raw`("${FIELD}"\s*:\s*)"(?:[^"\\]|\\.)*"`, 'gi'), `$1"${REDACTED}"`],
  // form / query: token=value
  [new RegExp(String.raw`(^|[?&;\s])(${FIELD})=([^&\s"'<]*)`, 'gi'), `$1$2=${REDACTED}`],
  // XML: <token>value</token>
  [new RegExp(String.raw`<(${FIELD})>[^<]*</\1>`, 'gi'), `<$1>${REDACTED}</$1>`],
  // a header line or a header-like pair: Authorization: Bearer …
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
];

/**
 * A word every one of PATTERNS needs (each FIELD name holds one of them, and so does the header
 * pattern), under the same case folding. Most strings a call writes (ids, steps, outcomes, an
 * API's answer) have none: for them one test replaces the four replaces, which allocated their
 * match state on every string of every row.
 */
const MAY_MATCH = /token|key|secret|passw|authorization|bearer|basic/i;

export type Scrub = (text: string) => string;

export function createScrub(secrets: readonly string[]): Scrub {
  const variants = [
    ...new Set(
      secrets
        .filter((s) => s.length >= 4)
        .flatMap((s) => [s, encodeURIComponent(s), encodeURIComponent(s).replace(/%20/g, '+'), JSON.stringify(s).slice(1, -1), xmlEscape(s)]),
    ),
  ].sort((a, b) => b.length - a.length);
  return (text) => {
    let t = text;
    for (const v of variants) if (t.includes(v)) t = t.split(v).join(REDACTED);
    if (!MAY_MATCH.test(t)) return t;
    for (const [re, to] of PATTERNS) t = t.replace(re, to);
    return t;
  };
}

/**
 * One bound value as the store writes it, on either backend: a string scrubbed, a batch of rows
 * (`rowsParam`) encoded with each of its strings scrubbed first.
 */
export function boundValue(scrub: Scrub): (v: unknown) => unknown {
  // shorter strings are ids, statuses and numbers: no secret pattern fits in them
  const text = (t: string) => (t.length >= 8 ? scrub(t) : t);
  return (v) => (typeof v === 'string' ? text(v) : v instanceof Rows ? encodeRows(v, text) : v);
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/**
 * The database with every string parameter scrubbed: `db.prepare(sql).run(…)` (and get, all,
 * iterate) see the scrubbed values. Statements keep their other methods; a method that returns
 * the statement itself (pluck, raw, bind) returns the scrubbing one.
 */
export function scrubbingDatabase(db: Database.Database, scrub: Scrub): Database.Database {
  const value = boundValue(scrub);
  const clean = (v: unknown): unknown => {
    if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      const o: Record<string, unknown> = {};
      // for-in, not Object.entries(): no array per field. A plain object's prototype has no
      // enumerable property, so it visits the same own keys
      for (const k in v) o[k] = value((v as Record<string, unknown>)[k]);
      return o;
    }
    return value(v);
  };
  const wrapStatement = (st: Database.Statement): Database.Statement => {
    // A statement is prepared once and run for every row: its wrapped methods are made once too,
    // not as a new closure on every `.run` read.
    const wrapped = new Map<PropertyKey, { of: unknown; fn: (...args: unknown[]) => unknown }>();
    const proxy: Database.Statement = new Proxy(st, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const kept = wrapped.get(prop);
        if (kept?.of === value) return kept.fn;
        const binds = prop === 'run' || prop === 'get' || prop === 'all' || prop === 'iterate' || prop === 'bind';
        const fn = (...args: unknown[]) => {
          const out = (value as (...a: unknown[]) => unknown).apply(target, binds ? args.map(clean) : args);
          return out === target ? proxy : out;
        };
        wrapped.set(prop, { of: value, fn });
        return fn;
      },
    });
    return proxy;
  };
  const proxy: Database.Database = new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === 'prepare') return (sql: string) => wrapStatement(target.prepare(sql));
      if (typeof value === 'function') {
        return (...args: unknown[]) => {
          const out = (value as (...a: unknown[]) => unknown).apply(target, args);
          return out === target ? proxy : out;
        };
      }
      return value;
    },
  });
  return proxy;
}
