import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { restrictDatabaseFiles } from './file-mode.js';
import { createScrub, scrubbingDatabase } from './scrub.js';

/**
 * The embedded store. Each feature that keeps state (the SMS outbox, hook history, …) owns its
 * tables and ships them as an ordered migration list; the store applies each migration once and
 * remembers it by id, so feature modules stay independent of one another.
 *
 * The surface is deliberately small (migrate, ready, close, and the raw handle) because a
 * PostgreSQL store for several nodes will be a second variant of `Store` later: code that needs
 * more than this should live in the feature module, where the SQL for each backend sits together.
 */

export type SqliteDatabase = Database.Database;

export interface Migration {
  /** Stable, globally unique id, e.g. "sms/001-outbox". Never rename one that has shipped. */
  readonly id: string;
  readonly up: string | ((db: SqliteDatabase) => void);
}

export interface StoreOptions {
  /** Applied in order on open; more can be applied later with `migrate()`. */
  migrations?: readonly Migration[];
  /** How long a writer waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** Values (from the environment) that must never be written: scrubbed from every bound string (store/scrub.ts). */
  secrets?: readonly string[];
}

export interface SqliteStore {
  readonly kind: 'sqlite';
  /** The URL it was opened from, for logs. */
  readonly url: string;
  readonly db: SqliteDatabase;
  /** Applies the migrations not applied yet, each in its own transaction; idempotent. */
  migrate(migrations: readonly Migration[]): void;
  /** True while the database is open and answers a query. */
  ready(): boolean;
  close(): void;
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
    db.exec(MIGRATIONS_TABLE);
    restrictDatabaseFiles(path);
  } catch (e) {
    db.close();
    throw e;
  }

  const store: SqliteStore = {
    kind: 'sqlite',
    url,
    db,
    migrate: (migrations) => migrate(db, migrations),
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
    },
  };
  if (opts.migrations) {
    try {
      store.migrate(opts.migrations);
    } catch (e) {
      db.close();
      throw e;
    }
  }
  return store;
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
