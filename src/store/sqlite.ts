import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { restrictDatabaseFiles } from './file-mode.js';
import { sqlFor, type PageCache, type Params, type PortMigration, type Queryable, type RunResult, type Sql, type StorePort, type TransactionOptions, transactionHandle } from './port.js';
import { createScrub, scrubbingDatabase } from './scrub.js';

/**
 * The embedded store. Each feature that keeps state (the SMS outbox, hook history, …) owns its
 * tables and ships them as an ordered migration list; the store applies each migration once and
 * remembers it by id, so feature modules stay independent of one another.
 *
 * Features reach it through the async port (src/store/port.ts), which a PostgreSQL store
 * implements too. better-sqlite3 itself is synchronous and has one connection, so the port's
 * transactions are serialized here: while one transaction's body awaits, every other statement
 * and transaction on this store waits for it to end, instead of running inside it.
 *
 * `db`, the raw synchronous handle, is what the features not yet on the port still use; it goes
 * once they are. Code on the raw handle must not run while a port transaction is open (better-
 * sqlite3 would nest its own transaction in ours as a savepoint).
 */

export type SqliteDatabase = Database.Database;

export type Migration = PortMigration;

export interface StoreOptions {
  /** Applied in order on open; more can be applied later with `migrate()`. */
  migrations?: readonly Migration[];
  /** How long a writer waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** Values (from the environment) that must never be written: scrubbed from every bound string (store/scrub.ts). */
  secrets?: readonly string[];
}

export interface SqliteStore extends StorePort {
  readonly kind: 'sqlite';
  readonly db: SqliteDatabase;
  /**
   * Applies the migrations not applied yet, each in its own transaction; idempotent. On SQLite
   * they are applied before it returns, and a failure throws at once, so code not yet on the port
   * may call it without awaiting.
   */
  migrate(migrations: readonly Migration[]): Promise<void>;
  /** True while the database is open and answers a query. */
  ready(): boolean;
  /** Closes at once (the returned promise is already settled). */
  close(): Promise<void>;
}

export type Store = SqliteStore;

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  id TEXT PRIMARY KEY,
  applied_at INTEGER NOT NULL
)`;

/** `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs/path` is absolute) or `sqlite::memory:`. */
export function sqlitePath(url: string): string {
  const m = /^sqlite:(?:\/\/)?(.+)$/.exec(url.trim());
  if (!m) throw new Error(`store URL "${url}" is not supported (expected sqlite:PATH or sqlite::memory:)`);
  const path = m[1]!;
  return path === ':memory:' ? path : resolve(path);
}

/** The page cache of the store's connection, in KiB (SQLite's negative cache_size). */
export const PAGE_CACHE_KIB = -2000;

export function openStore(url: string, opts: StoreOptions = {}): Store {
  const path = sqlitePath(url);
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
    restrictDatabaseFiles(path);
  }
  const raw = new Database(path);
  const db = scrubbingDatabase(raw, createScrub(opts.secrets ?? []));
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    // WAL lets the history reader run while the outbox worker writes; FULL makes "accepted" mean
    // on disk even if the machine loses power right after accept() returns.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection, which fills as the store
    // grows: the chaos run's service kept up to 16 MB more RSS after a long run than after a short
    // one, which looks like a leak and is memory the host could use. What the store reads often is
    // small (the indexes' tails, the rows of calls and messages in progress); a page that falls out
    // of the cache comes back from the OS's file cache. SQLite's own default: 2 MB.
    db.pragma(`cache_size = ${PAGE_CACHE_KIB}`);
    db.exec(MIGRATIONS_TABLE);
    restrictDatabaseFiles(path);
  } catch (e) {
    db.close();
    throw e;
  }

  const port = sqlitePort(db, path === ':memory:' ? {} : lineFor(path));
  const store: SqliteStore = {
    kind: 'sqlite',
    url,
    db,
    query: port.query,
    one: port.one,
    run: port.run,
    transaction: port.transaction,
    migrate(migrations) {
      migrate(db, migrations);
      return Promise.resolve();
    },
    outage: () => undefined,
    pageCache: () => pageCache(db),
    ready() {
      if (!db.open) return false;
      try {
        db.prepare('SELECT 1').get();
        return true;
      } catch {
        return false;
      }
    },
    close() {
      if (db.open) db.close();
      return Promise.resolve();
    },
  };
  if (opts.migrations) {
    try {
      migrate(db, opts.migrations);
    } catch (e) {
      db.close();
      throw e;
    }
  }
  return store;
}

function pageCache(db: SqliteDatabase): PageCache {
  const pageSizeBytes = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  // negative: KiB; positive: pages
  const size = db.pragma('cache_size', { simple: true }) as number;
  const limitBytes = size < 0 ? -size * 1024 : size * pageSizeBytes;
  return { pageSizeBytes, pages, limitBytes, boundBytes: Math.min(limitBytes, pages * pageSizeBytes) };
}

function migrate(db: SqliteDatabase, migrations: readonly Migration[]): void {
  const seen = new Set<string>();
  for (const m of migrations) {
    if (seen.has(m.id)) throw new Error(`migration id "${m.id}" appears twice in one list`);
    seen.add(m.id);
  }
  const applied = db.prepare<[string], { id: string }>('SELECT id FROM schema_migrations WHERE id = ?');
  const record = db.prepare<[string, number]>('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)');
  for (const m of migrations) {
    // IMMEDIATE takes the write lock before the check, so two processes opening one file at the
    // same moment cannot both apply the same migration.
    db.transaction(() => {
      if (applied.get(m.id)) return;
      if (typeof m.up === 'string') db.exec(m.up);
      else m.up(db);
      record.run(m.id, Date.now());
    }).immediate();
  }
}

/** The statements a port call runs: bound as better-sqlite3 takes them (an object, or spread). */
function bind(params: Params | undefined): unknown[] {
  if (params === undefined) return [];
  return Array.isArray(params) ? [...(params as readonly unknown[])] : [params];
}

/** Prepared statements by text; a feature's statements are few and fixed, so this stays small. */
const CACHE_LIMIT = 500;

/** The work queued behind the transaction now open on one database file, shared by its stores in this process. */
interface Line {
  tail?: Promise<unknown>;
  queued?: number;
}

const lines = new Map<string, Line>();

/**
 * One line per file. Two stores on one file in one process (two workers in a test, a CLI beside
 * the service) must not hold transactions at once: the second BEGIN IMMEDIATE would wait for the
 * first with the thread blocked (busy_timeout), and the first could never finish its body.
 */
function lineFor(path: string): Line {
  let l = lines.get(path);
  if (!l) lines.set(path, (l = {}));
  return l;
}

/**
 * The port over one better-sqlite3 handle. Statements run synchronously when the store is idle
 * (so their order is the order they were issued); while a transaction is open they, and further
 * transactions, queue behind it.
 */
function sqlitePort(db: SqliteDatabase, line: Line): Pick<StorePort, 'query' | 'one' | 'run' | 'transaction'> {
  const cache = new Map<string, Database.Statement>();
  const prepare = (sql: Sql): Database.Statement => {
    const text = sqlFor(sql, 'sqlite');
    let st = cache.get(text);
    if (!st) {
      if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
      st = db.prepare(text);
      cache.set(text, st);
    }
    return st;
  };
  const direct: Omit<Queryable, 'kind'> = {
    query: <T>(sql: Sql, params?: Params) => Promise.resolve(prepare(sql).all(...bind(params)) as T[]),
    one: <T>(sql: Sql, params?: Params) => Promise.resolve(prepare(sql).get(...bind(params)) as T | undefined),
    run: (sql: Sql, params?: Params) => Promise.resolve({ changes: prepare(sql).run(...bind(params)).changes } as RunResult),
  };

  // line.tail: the work queued behind the transaction now open (undefined when none is).
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const prev = line.tail ?? Promise.resolve();
    const run = prev.then(work, work);
    line.queued = (line.queued ?? 0) + 1;
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    line.tail = settled;
    void settled.then(() => {
      line.queued = (line.queued ?? 1) - 1;
      if (line.queued === 0) line.tail = undefined;
    });
    return run;
  };
  /** Runs now when nothing is open (a thrown error becomes a rejection), else after what is queued. */
  const statement = <T>(work: () => Promise<T>): Promise<T> => {
    if (line.tail === undefined) {
      try {
        return work();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return serialized(work);
  };

  return {
    query: (sql, params) => statement(() => direct.query(sql, params)),
    one: (sql, params) => statement(() => direct.one(sql, params)),
    run: (sql, params) => statement(() => direct.run(sql, params)),
    transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      return serialized(async () => {
        // Transactions run one at a time here, so no other commit happens at the relaxed level.
        if (opts.relaxed) db.pragma('synchronous = NORMAL');
        try {
          return await body();
        } finally {
          if (opts.relaxed && db.open) db.pragma('synchronous = FULL');
        }
      });
      async function body(): Promise<T> {
        db.exec(opts.immediate ? 'BEGIN IMMEDIATE' : 'BEGIN');
        const { tx, end } = transactionHandle('sqlite', direct);
        try {
          const result = await fn(tx);
          end();
          db.exec('COMMIT');
          return result;
        } catch (e) {
          end();
          // a failed COMMIT (SQLITE_FULL) may already have ended it
          if (db.open && db.inTransaction) db.exec('ROLLBACK');
          throw e;
        }
      }
    },
  };
}
