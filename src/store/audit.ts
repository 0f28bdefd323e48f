import { statement, postgresDdl, applyMigrations } from './port.js';
import type { Migration, Store } from './port.js';

/**
 * The audit log: who did what through the admin API (re-send, reveal of full numbers). One row
 * per action, written before the action's answer goes out; purged by retention like every log.
 */

export const auditMigrations: readonly Migration[] = [
  {
    id: 'audit/001-log',
    get postgres() {
      return postgresDdl(String(auditMigrations[0]!.up));
    },
    up: `
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT,
        remote TEXT
      );
      CREATE INDEX audit_log_at ON audit_log (at);
    `,
  },
];

export interface AuditEntry {
  id?: number;
  at: number;
  actor: string;
  role: string;
  /** e.g. `sms.resend`, `hooks.resend`, `reveal` */
  action: string;
  /** what it was done to: a message id, a run id, a path */
  target?: string;
  detail?: string;
  remote?: string;
}

export interface AuditLog {
  /** Resolves once the entry is written: the action's answer waits for it. */
  record(e: Omit<AuditEntry, 'id' | 'at'>): Promise<void>;
  list(opts?: { limit?: number; offset?: number; action?: string }): Promise<AuditEntry[]>;
}

export function openAuditLog(store: Store): AuditLog {
  applyMigrations(store, auditMigrations);
  const insert = statement<[number, string, string, string, string | null, string | null, string | null]>(
    'INSERT INTO audit_log (at, actor, role, action, target, detail, remote) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  // ?::text: PostgreSQL must know the type of a parameter that is only compared with NULL
  const select = statement<[string | null, string | null, number, number], AuditEntry>(
    `SELECT id, at, actor, role, action, target, detail, remote FROM audit_log
     WHERE (CAST(? AS TEXT) IS NULL OR action = ?) ORDER BY id DESC LIMIT ? OFFSET ?`,
  );
  return {
    async record(e) {
      await insert.run(store, Date.now(), e.actor, e.role, e.action, e.target ?? null, e.detail ?? null, e.remote ?? null);
    },
    list(opts = {}) {
      const a = opts.action ?? null;
      return select.all(store, a, a, opts.limit ?? 100, opts.offset ?? 0);
    },
  };
}
