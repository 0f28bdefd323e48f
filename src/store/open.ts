import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { auditMigrations } from './audit.js';
import { maskUrl, type PortMigration, type StorePort } from './port.js';

/**
 * Opens the store the config names: `sqlite:PATH` (the embedded default) or
 * `postgres://user@host:port/db` (several instances on one database). The `store:` setting is
 * the URL alone, or `{ url, pool, statementTimeout }` (the last two for PostgreSQL).
 */

export type StoreSetting = string | { url: string; pool?: number; statementTimeout?: number };

export function storeUrl(setting: StoreSetting): string {
  return typeof setting === 'string' ? setting : setting.url;
}

/** `postgres://…` or `postgresql://…`. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url.trim());
}

export interface OpenOptions {
  secrets?: readonly string[];
  /**
   * Applied before this resolves. On PostgreSQL pass every feature's list: features construct
   * synchronously and expect their tables to be there.
   */
  migrations?: readonly PortMigration[];
  /** PostgreSQL: where an outage and the recovery are told, and the wait below. */
  log?: Logger;
  /**
   * PostgreSQL: a database that does not answer yet (refused, reset, starting up, a name that does
   * not resolve yet) is waited for, trying every `everyMs` (default 1 s), until it answers or
   * `signal` aborts (then this rejects with an AbortError). Without it, the first failure throws.
   * An error that waiting cannot mend (a wrong password, a missing database, a failing migration)
   * always throws at once: a StoreUnusable.
   */
  wait?: { signal?: AbortSignal; everyMs?: number };
}

/** The store can be reached but not used as configured: fix the setting, waiting will not help. */
export class StoreUnusable extends Error {
  override readonly name = 'StoreUnusable';
}

/** A hint for the SQLSTATEs an operator meets first; the rest speak for themselves. */
const HINTS: Record<string, string> = {
  '28P01': 'check the user and the password',
  '28000': 'check pg_hba.conf and the user',
  '3D000': 'create the database first',
  '42501': "grant the user CREATE on the database's public schema",
};

/** How often a wait is logged again after its first line: enough to see it go on, not a flood. */
const WAIT_LOG_EVERY_MS = 10_000;

// Each backend's module (and its driver) is imported only when the config names it: node-postgres
// and the node:net/tls/crypto it pulls in are about 4 MB of a fresh service's RSS that a SQLite
// store never uses, and better-sqlite3 is as useless to a PostgreSQL one.
export async function openAnyStore(setting: StoreSetting, opts: OpenOptions = {}): Promise<StorePort> {
  const url = storeUrl(setting);
  if (isPostgresUrl(url)) {
    const { openPostgresStore, ...errors } = await import('./postgres.js');
    const s: { pool?: number; statementTimeout?: number } = typeof setting === 'string' ? {} : setting;
    const open = () => openPostgresStore(url, {
      secrets: opts.secrets,
      log: opts.log,
      migrations: [...(opts.migrations ?? []), ...auditMigrations],
      ...(s.pool !== undefined ? { pool: s.pool } : {}),
      ...(s.statementTimeout !== undefined ? { statementTimeoutMs: s.statementTimeout } : {}),
    });
    return openWaiting(open, maskUrl(url), opts, errors);
  }
  const { openStore } = await import('./sqlite.js');
  return openStore(url, { secrets: opts.secrets, migrations: opts.migrations });
}

type ConnectionErrors = Pick<typeof import('./postgres.js'), 'isConnectionError' | 'connectionReason' | 'describeOutage'>;

async function openWaiting(open: () => Promise<StorePort>, shown: string, opts: OpenOptions, { isConnectionError, connectionReason, describeOutage }: ConnectionErrors): Promise<StorePort> {
  const signal = opts.wait?.signal;
  const started = Date.now();
  let logged = 0;
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await untilAborted(open(), signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (!isConnectionError(e)) {
        const reason = connectionReason(e);
        const hint = HINTS[(e as { code?: string }).code ?? ''];
        throw new StoreUnusable(`store: PostgreSQL at ${shown} cannot be used: ${reason}${hint ? ` (${hint})` : ''}`, { cause: e });
      }
      if (!opts.wait) throw e;
      const now = Date.now();
      if (attempt === 1 || now - logged >= WAIT_LOG_EVERY_MS) {
        logged = now;
        const everyS = (opts.wait.everyMs ?? 1_000) / 1_000;
        const reason = connectionReason(e);
        opts.log?.warn({ store: shown, reason, attempt, waitedMs: now - started }, `${describeOutage(shown, reason)}: not starting until it answers, trying again every ${everyS} s`);
      }
      // rejects when the signal aborts: the caller checks the signal, not the error
      await sleep(opts.wait.everyMs ?? 1_000, undefined, { signal });
    }
  }
}

/** `p`, or the abort: a connection attempt that opens after all is closed in the background. */
function untilAborted(p: Promise<StorePort>, signal: AbortSignal | undefined): Promise<StorePort> {
  if (!signal) return p;
  return new Promise((resolve, reject) => {
    const abort = () => {
      p.then((s) => s.close(), () => undefined);
      reject(signal.reason);
    };
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
