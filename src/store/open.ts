import type { Logger } from '../log.js';
import { auditMigrations } from './audit.js';
import type { PortMigration, StorePort } from './port.js';
import { isPostgresUrl, openPostgresStore } from './postgres.js';
import { openStore as openSqliteStore } from './sqlite.js';

/**
 * Opens the store the config names: `sqlite:PATH` (the embedded default) or
 * `postgres://user@host:port/db` (several instances on one database). The `store:` setting is
 * the URL alone, or `{ url, pool, statementTimeout }` (the last two for PostgreSQL).
 */

export type StoreSetting = string | { url: string; pool?: number; statementTimeout?: number };

export function storeUrl(setting: StoreSetting): string {
  return typeof setting === 'string' ? setting : setting.url;
}

export interface OpenOptions {
  secrets?: readonly string[];
  /**
   * Applied before this resolves. On PostgreSQL pass every feature's list: features construct
   * synchronously and expect their tables to be there.
   */
  migrations?: readonly PortMigration[];
  /** PostgreSQL: where an outage and the recovery are told. */
  log?: Logger;
}

export async function openAnyStore(setting: StoreSetting, opts: OpenOptions = {}): Promise<StorePort> {
  const url = storeUrl(setting);
  if (isPostgresUrl(url)) {
    const s: { pool?: number; statementTimeout?: number } = typeof setting === 'string' ? {} : setting;
    return openPostgresStore(url, {
      secrets: opts.secrets,
      log: opts.log,
      migrations: [...(opts.migrations ?? []), ...auditMigrations],
      ...(s.pool !== undefined ? { pool: s.pool } : {}),
      ...(s.statementTimeout !== undefined ? { statementTimeoutMs: s.statementTimeout } : {}),
    });
  }
  return openSqliteStore(url, { secrets: opts.secrets, migrations: opts.migrations });
}
