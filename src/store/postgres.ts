import pg from 'pg';
import type { Logger } from '../log.js';
import { maskUrl, numberPlaceholders, sqlFor, type Params, type PortMigration, type Queryable, type RunResult, type Sql, type StoreOutage, type StorePort, type TransactionOptions, transactionHandle } from './port.js';
import { boundValue, createScrub, type Scrub } from './scrub.js';

/**
 * The PostgreSQL store, for instances that share one database (issue 12). A pool of connections
 * (node-postgres) behind the same port as SQLite's (src/store/port.ts); the features' SQL is
 * numbered ($1…) here and otherwise sent as written.
 *
 * What differs from SQLite, and is handled here rather than in each feature:
 * - BIGINT (epoch ms columns, COUNT(*)) and NUMERIC (SUM) come back as numbers, not strings:
 *   every value here is far below 2^53.
 * - Connection loss: `ready()` is false from the first failed statement until a probe (once a
 *   second, while down) answers again. The workers claim nothing meanwhile, /health says 503, an
 *   accept fails (the step falls back) and nothing already committed is lost; the pool opens new
 *   connections once the server is back. `outage()` says why and since when, for /health; the
 *   log gets one line when it starts and one when it ends, however many probes fail between.
 * - Secrets: every bound string is scrubbed as on SQLite (src/store/scrub.ts), and the URL this
 *   store reports has its password masked.
 */

export interface PostgresStoreOptions {
  /** Connections in the pool. Default 10. */
  pool?: number;
  /** Server-side statement_timeout in ms; 0 = none. Default 30 s. */
  statementTimeoutMs?: number;
  /** Values that must never be written (see store/scrub.ts). */
  secrets?: readonly string[];
  migrations?: readonly PortMigration[];
  /** How long a new connection may take. Default 5 s. */
  connectTimeoutMs?: number;
  /** Told once when the database stops answering and once when it answers again (not per probe). */
  log?: Pick<Logger, 'warn' | 'info'>;
}

export interface PostgresStore extends StorePort {
  readonly kind: 'postgres';
}

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  id TEXT PRIMARY KEY,
  applied_at BIGINT NOT NULL
)`;

/** One lock for every migration run on this database: two instances starting at once apply each once. */
const MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('call-actions/migrate'))";

const INT8 = 20;
const NUMERIC = 1700;

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => (v === null ? null : Number(v));
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** Errors that mean the server or the connection went away, not that the statement was wrong. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^08/.test(code) || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(msg);
}

/**
 * A connection error in a few words for /health and the log: the OS's code (ECONNREFUSED), or
 * PostgreSQL's SQLSTATE with its message. node-postgres puts neither the URL nor the password in
 * these.
 */
export function connectionReason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (/^E[A-Z_]+$/.test(code)) return code;
  if (code) return `${code} ${message}`;
  return message || 'unknown error';
}

/** `PostgreSQL at postgres://app:***@db:5432/calls is unreachable (ECONNREFUSED)` */
export function describeOutage(maskedUrl: string, reason: string): string {
  return `PostgreSQL at ${maskedUrl} is unreachable (${reason})`;
}

export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const scrub = createScrub(opts.secrets ?? []);
  const pool = new pg.Pool({
    connectionString: url,
    max: Math.max(1, Math.floor(opts.pool ?? 10)),
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    application_name: 'call-actions',
    types,
  });
  let up = false;
  let closed = false;
  // set once open() has succeeded: a failed open is the caller's error (src/store/open.ts), not an outage
  let opened = false;
  let outage: Omit<StoreOutage, 'message'> | undefined;
  let probe: NodeJS.Timeout | undefined;
  const shown = maskUrl(url);

  // An idle connection the server dropped: the pool discards it; say we are down until a probe answers.
  pool.on('error', (e) => markDown(e));

  const markDown = (e: unknown) => {
    up = false;
    if (closed) return;
    const reason = connectionReason(e);
    if (!outage) {
      outage = { reason, since: new Date().toISOString() };
      if (opened) opts.log?.warn({ store: shown, reason }, `${describeOutage(shown, reason)}; accepted work waits, trying again every second`);
    } else {
      // the latest reason (a server shutting down, then refusing connections): what an operator must fix now
      outage.reason = reason;
    }
    if (probe) return;
    probe = setInterval(() => {
      pool.query('SELECT 1').then(markUp, (err: unknown) => (isConnectionError(err) ? markDown(err) : undefined));
    }, 1_000);
    probe.unref();
  };
  const markUp = () => {
    up = true;
    if (probe) {
      clearInterval(probe);
      probe = undefined;
    }
    if (!outage) return;
    const downMs = Date.now() - Date.parse(outage.since);
    outage = undefined;
    if (opened) opts.log?.info({ store: shown, downMs }, 'PostgreSQL answers again; the queued work goes on');
  };
  const watch = <T>(p: Promise<T>): Promise<T> =>
    p.then(
      (v) => {
        markUp();
        return v;
      },
      (e: unknown) => {
        if (isConnectionError(e)) markDown(e);
        throw e;
      },
    );

  const clean = boundValue(scrub);
  const prepare = (sql: Sql, params: Params | undefined) => {
    const { text, values } = numberPlaceholders(sqlFor(sql, 'postgres'), params);
    return { text, values: values.map(clean) };
  };
  const on = (client: pg.Pool | pg.PoolClient): Queryable => ({
    kind: 'postgres',
    async query<T>(sql: Sql, params?: Params): Promise<T[]> {
      const { text, values } = prepare(sql, params);
      return (await watch(client.query(text, values))).rows as T[];
    },
    async one<T>(sql: Sql, params?: Params): Promise<T | undefined> {
      const { text, values } = prepare(sql, params);
      return (await watch(client.query(text, values))).rows[0] as T | undefined;
    },
    async run(sql: Sql, params?: Params): Promise<RunResult> {
      const { text, values } = prepare(sql, params);
      return { changes: (await watch(client.query(text, values))).rowCount ?? 0 };
    },
  });

  const transaction = async <T>(fn: (tx: Queryable) => Promise<T>, _opts: TransactionOptions = {}): Promise<T> => {
    const client = await watch(pool.connect());
    let broken: unknown;
    try {
      await watch(client.query('BEGIN'));
      const { tx, end } = transactionHandle('postgres', on(client));
      try {
        const result = await fn(tx);
        end();
        await watch(client.query('COMMIT'));
        return result;
      } catch (e) {
        end();
        await client.query('ROLLBACK').catch((r: unknown) => (broken = r));
        throw e;
      }
    } catch (e) {
      if (isConnectionError(e)) broken ??= e;
      throw e;
    } finally {
      // a connection that failed mid-transaction is not given back to the pool
      client.release(broken instanceof Error ? broken : broken ? new Error(String(broken)) : undefined);
    }
  };

  const migrate = async (migrations: readonly PortMigration[]): Promise<void> => {
    const seen = new Set<string>();
    for (const m of migrations) {
      if (seen.has(m.id)) throw new Error(`migration id "${m.id}" appears twice in one list`);
      seen.add(m.id);
      if (m.postgres === undefined) throw new Error(`migration "${m.id}" has no PostgreSQL text`);
    }
    for (const m of migrations) {
      await transaction(async (tx) => {
        await tx.query(MIGRATION_LOCK);
        if (await tx.one('SELECT id FROM schema_migrations WHERE id = ?', [m.id])) return;
        // no parameters: sent as a simple query, so one text may hold several statements
        const client = tx as unknown as { query: Queryable['query'] };
        await client.query(m.postgres!);
        await tx.run('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)', [m.id, Date.now()]);
      });
    }
  };

  const base = on(pool);
  const store: PostgresStore = {
    kind: 'postgres',
    url: shown,
    query: base.query,
    one: base.one,
    run: base.run,
    transaction,
    migrate,
    ready: () => up && !closed,
    outage: () => (closed || !outage ? undefined : { ...outage, message: describeOutage(shown, outage.reason) }),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(probe);
      await pool.end();
    },
  };
  try {
    await base.query(MIGRATIONS_TABLE);
    if (opts.migrations) await migrate(opts.migrations);
    opened = true;
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
