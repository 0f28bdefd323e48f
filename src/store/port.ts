/**
 * The async store port: what a feature may ask of the store, whichever database is behind it.
 * SQLite (src/store/sqlite.ts) answers in-process and at once; PostgreSQL answers over a pool of
 * connections. Features write their SQL against this port, so one text serves both backends where
 * the dialects agree, and a feature module keeps the two texts side by side where they do not
 * (`{ sqlite, postgres }`): the dialect difference stays next to the code that depends on it.
 *
 * Parameters are named (`@name`, bound from an object) or positional (`?`, bound from an array),
 * as better-sqlite3 writes them; the PostgreSQL backend numbers them (`$1`, …) before sending.
 * That keeps the shipped SQLite statements unchanged, and the translation is one small function
 * (`numberPlaceholders`) rather than a query builder.
 */

import { wellFormed } from '../unicode.js';

export type StoreKind = 'sqlite' | 'postgres';

/** One statement for both backends, or the text for each where the dialects differ. */
export type Sql = string | { readonly sqlite: string; readonly postgres: string };

/** Named parameters (`@name`) from an object, or positional ones (`?`) from an array. */
export type Params = Readonly<Record<string, unknown>> | readonly unknown[];

export interface RunResult {
  /** Rows the statement inserted, updated or deleted. */
  changes: number;
}

/** What a statement can run on: the store itself, or an open transaction. */
export interface Queryable {
  readonly kind: StoreKind;
  /** Every row the statement returns. */
  query<T = Record<string, unknown>>(sql: Sql, params?: Params): Promise<T[]>;
  /** The first row, or undefined. */
  one<T = Record<string, unknown>>(sql: Sql, params?: Params): Promise<T | undefined>;
  run(sql: Sql, params?: Params): Promise<RunResult>;
}

/**
 * The handle a transaction's body gets. It refuses statements once the transaction has ended: a
 * statement a body forgot to await would otherwise run outside it, on SQLite's one connection or
 * on a pooled PostgreSQL client that another caller may already hold. `end()` is called before
 * COMMIT or ROLLBACK.
 */
export function transactionHandle(kind: StoreKind, inner: Omit<Queryable, 'kind'>): { tx: Queryable; end(): void } {
  let open = true;
  const live = <R>(work: () => Promise<R>): Promise<R> => {
    if (!open) return Promise.reject(new Error('statement on a transaction that has ended'));
    try {
      return work();
    } catch (e) {
      // better-sqlite3 throws synchronously; callers expect a rejection either way
      return Promise.reject(e);
    }
  };
  return {
    tx: {
      kind,
      query: (sql, params) => live(() => inner.query(sql, params)),
      one: (sql, params) => live(() => inner.one(sql, params)),
      run: (sql, params) => live(() => inner.run(sql, params)),
    },
    end: () => {
      open = false;
    },
  };
}

export interface TransactionOptions {
  /**
   * Take the write lock before the first statement (SQLite's BEGIN IMMEDIATE): what a claim or an
   * accept needs, so that its reads and its writes see the same database. PostgreSQL takes row
   * locks as it goes; a feature that needs more there says so in its SQL (FOR UPDATE SKIP LOCKED,
   * an advisory lock).
   */
  immediate?: boolean;
  /**
   * SQLite only: commit without waiting for the disk (synchronous=NORMAL for this commit, FULL
   * again after). For logs written in groups (src/store/group-commit.ts); PostgreSQL ignores it.
   */
  relaxed?: boolean;
}

/** A migration for both backends: SQLite's shipped text, and PostgreSQL's beside it. */
export interface PortMigration {
  /** Stable, globally unique id, e.g. "sms/001-outbox". Never rename one that has shipped. */
  readonly id: string;
  /** SQLite's DDL, or code over the raw handle (a table rebuild). Never changed once shipped. */
  readonly up: string | ((db: import('better-sqlite3').Database) => void);
  /** PostgreSQL's DDL; a migration without one cannot be applied to a PostgreSQL store. */
  readonly postgres?: string;
}

export interface StoreOutage {
  /** What failed, e.g. `ECONNREFUSED` or `57P01 terminating connection due to administrator command`; never a password */
  reason: string;
  /** ISO time of the first failure since the database last answered */
  since: string;
  /** The sentence for /health and the log: which database (password masked) and why */
  message: string;
}

export interface StorePort extends Queryable {
  /** The URL it was opened from, with any password masked: safe for logs and /health. */
  readonly url: string;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it rejects. On
   * SQLite the one connection is held for the whole body: other statements wait until it ends.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** Applies the migrations not applied yet, each in its own transaction; idempotent. */
  migrate(migrations: readonly PortMigration[]): Promise<void>;
  /** True while the database answers: false while PostgreSQL is unreachable. */
  ready(): boolean;
  /**
   * Why the database does not answer, and since when; undefined while it does. SQLite, a file in
   * this process, has no outage of this kind (its write failures are src/store/write-health.ts's).
   */
  outage(): StoreOutage | undefined;
  /**
   * SQLite: how much of this process's memory its page cache may hold now (for /stats). Absent on
   * PostgreSQL, whose cache lives in the server.
   */
  pageCache?(): PageCache;
  close(): Promise<void>;
}

/**
 * SQLite's page cache, from its pragmas: better-sqlite3 does not expose sqlite3_db_status, so the
 * pages actually cached are not known, only their bound. The cache never holds more pages than
 * the database has, nor more than its limit.
 */
export interface PageCache {
  pageSizeBytes: number;
  /** pages in the database file */
  pages: number;
  /** `cache_size`: the most the cache keeps before it reuses pages */
  limitBytes: number;
  /** min(pages × page size, limit): the most of RSS the cache can be now */
  boundBytes: number;
}

/** The text of `sql` for a backend. */
export function sqlFor(sql: Sql, kind: StoreKind): string {
  return typeof sql === 'string' ? sql : sql[kind];
}

/**
 * PostgreSQL's numbered placeholders for a statement written with `@name` or `?`: the text with
 * `$1…$n`, and the values in that order. Quoted strings, quoted identifiers and comments are
 * copied as they are, so a literal '@' or '?' inside them is not taken for a parameter. One name
 * used twice binds one number. Mixing the two styles in one statement is refused.
 */
export function numberPlaceholders(sql: string, params: Params | undefined): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const named = new Map<string, number>();
  const positional = Array.isArray(params) ? (params as readonly unknown[]) : undefined;
  const object = positional ? undefined : (params as Readonly<Record<string, unknown>> | undefined);
  let next = 0;
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = closing(sql, i, c);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '?') {
      if (!positional) throw new Error('a statement with ? placeholders needs an array of parameters');
      if (next >= positional.length) throw new Error(`the statement has more ? placeholders than the ${positional.length} parameters given`);
      values.push(positional[next++]);
      out += `$${values.length}`;
      i++;
    } else if (c === '@' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      const m = /^@([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i))!;
      const name = m[1]!;
      if (!object) throw new Error(`the statement's @${name} needs an object of parameters`);
      if (!(name in object)) throw new Error(`missing parameter @${name}`);
      let n = named.get(name);
      if (n === undefined) {
        values.push(object[name]);
        named.set(name, (n = values.length));
      }
      out += `$${n}`;
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  if (positional && next !== positional.length) throw new Error(`${positional.length} parameters given for ${next} ? placeholders`);
  return { text: out, values };
}

/** The index just past the quote that closes the one at `start` ('' and "" escape a quote). */
function closing(sql: string, start: number, quote: string): number {
  let i = start + 1;
  for (;;) {
    const j = sql.indexOf(quote, i);
    if (j === -1) return sql.length;
    if (sql[j + 1] === quote) i = j + 2;
    else return j + 1;
  }
}

/** A store URL with its password replaced, for logs and /health: `postgres://app:***@db/x`. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/i, '$1:***@');
}

/**
 * A feature's statement, declared once with its parameter and row types (as better-sqlite3's
 * `prepare<P, R>` declared them) and run on the store or on an open transaction. Parameters are
 * given as better-sqlite3 took them: one object for `@name`, or the values for `?` in order.
 */
export interface Statement<P extends unknown[], R> {
  readonly sql: Sql;
  run(q: Queryable, ...params: P): Promise<RunResult>;
  get(q: Queryable, ...params: P): Promise<R | undefined>;
  all(q: Queryable, ...params: P): Promise<R[]>;
}

export function statement<P extends unknown[] = [], R = Record<string, unknown>>(sql: Sql): Statement<P, R> {
  const bound = (params: unknown[]): Params | undefined => {
    if (params.length === 0) return undefined;
    const [first] = params;
    return params.length === 1 && first !== null && typeof first === 'object' && !Array.isArray(first) && !Buffer.isBuffer(first)
      ? (first as Record<string, unknown>)
      : params;
  };
  return {
    sql,
    run: (q, ...params) => q.run(sql, bound(params)),
    get: (q, ...params) => q.one<R>(sql, bound(params)),
    all: (q, ...params) => q.query<R>(sql, bound(params)),
  };
}

/** The SQL types a column of `rowsFrom` may have. */
export type RowsColumnType = 'text' | 'bigint';

/**
 * A statement over a batch of rows given as one parameter, for writing N rows in one statement:
 * `build` gets the FROM item (the rows as a table named `alias` with `columns`) and returns the
 * statement; bind the parameter with `rowsParam()`. On SQLite, in-process, per-row statements
 * cost little; on PostgreSQL each is a round trip while the transaction holds its row locks, and
 * those round trips were what held the outbox under 500 SMS/s there (bench/outbox.js).
 *
 * One JSON array for both backends (json_each, json_to_recordset) rather than one array per
 * column: SQLite binds no arrays, and the columns stay named at the place that reads them.
 */
export function rowsFrom(
  param: string,
  alias: string,
  columns: Readonly<Record<string, RowsColumnType>>,
  build: (from: string) => string,
): { sqlite: string; postgres: string } {
  const names = Object.keys(columns);
  for (const n of names) if (!/^[a-z_][a-z0-9_]*$/.test(n)) throw new Error(`rowsFrom: bad column name "${n}"`);
  return {
    sqlite: build(`(SELECT ${names.map((n) => `value ->> '${n}' AS ${n}`).join(', ')} FROM json_each(@${param})) AS ${alias}`),
    postgres: build(`json_to_recordset(@${param}::json) AS ${alias}(${names.map((n) => `${n} ${columns[n]}`).join(', ')})`),
  };
}

/**
 * The parameter for `rowsFrom`. The store encodes it when it binds it (`encodeRows`), after its
 * scrub has seen each string on its own: inside the JSON text a secret's quotes are escaped,
 * and the patterns that find `"token": "…"` would no longer match.
 */
export class Rows {
  constructor(readonly rows: readonly object[]) {}
}

export function rowsParam(rows: readonly object[]): Rows {
  return new Rows(rows);
}

/**
 * `rows` as the JSON text `rowsFrom` reads, each string passed through `clean` (the store's
 * scrub). Strings are made storable on the way: PostgreSQL's json cannot turn `\u0000` or a lone
 * surrogate into text and would refuse the whole batch for one provider answer that carried
 * either, so NUL and lone surrogates become U+FFFD, on SQLite too, so that both backends keep the
 * same value.
 */
export function encodeRows(rows: Rows, clean: (s: string) => string): string {
  return JSON.stringify(rows.rows, (_k, v: unknown) => (typeof v === 'string' ? storableText(clean(v)) : v));
}

/** Text both backends store as it is: no NUL (PostgreSQL's text has none) and no lone surrogate. */
function storableText(v: string): string {
  return wellFormed(v).replace(/\u0000/g, '\uFFFD');
}

/**
 * PostgreSQL's text of a shipped SQLite CREATE TABLE migration, where the two differ only in
 * types: epoch-ms and counter columns are BIGINT (SQLite's INTEGER holds 64 bits), an
 * AUTOINCREMENT key is a BIGSERIAL, and WITHOUT ROWID is SQLite's alone. Anything else a
 * migration needs on PostgreSQL is written out beside it.
 */
export function postgresDdl(sqlite: string): string {
  return sqlite
    .replace(/\bINTEGER PRIMARY KEY AUTOINCREMENT\b/g, 'BIGSERIAL PRIMARY KEY')
    .replace(/\bINTEGER\b/g, 'BIGINT')
    .replace(/\)\s*WITHOUT ROWID/g, ')');
}

/**
 * A feature's own migrations, applied where it is constructed. SQLite applies them before this
 * returns (and throws at once). A PostgreSQL store is migrated as a whole when it is opened
 * (src/store/open.ts), before any feature exists, so here they are already applied and this only
 * checks again in the background; a failure there shows in the feature's first statement.
 */
export function applyMigrations(store: StorePort, migrations: readonly PortMigration[]): void {
  const done = store.migrate(migrations);
  if (store.kind === 'postgres') done.catch(() => undefined);
}

/** What features are given: the store, whichever backend it is. */
export type Store = StorePort;
export type Migration = PortMigration;
