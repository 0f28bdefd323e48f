import { leaseColumnsDdl, type LeasedTableSpec } from '../queue/leased-table.js';
import { rowsFrom, statement, postgresDdl, type Rows } from '../store/port.js';
import type { Migration } from '../store/port.js';
import { limitMigrations } from './limits.js';
import { receiptMigrations } from './receipts.js';

/**
 * The outbox's tables. `sms_messages` is the queue and the history at once: a row is accepted
 * (`pending`), claimed under a lease (`sending`), and settles as `sent` or `failed`; rows the step
 * decided not to send (`skipped`) or a limit refused (`blocked`) are written settled. `sms_attempts`
 * keeps every try with the provider's answer; `sms_once` makes an accept happen once per (call,
 * key). The outbox (src/sms/outbox.ts) runs them; the history (src/sms/history.ts) reads them.
 */

/** `unknown`: an at-most-once provider's message whose attempt may or may not have reached it; never repeated. */
export type SmsStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'unknown' | 'skipped' | 'blocked';
export type AttemptOutcome = 'sending' | 'ok' | 'retry' | 'final' | 'unexpected' | 'interrupted';

export const smsMigrations: readonly Migration[] = [
  {
    id: 'sms/001-outbox',
    get postgres() {
      return postgresDdl(String(smsMigrations[0]!.up));
    },
    up: `
      CREATE TABLE sms_messages (
        id TEXT PRIMARY KEY,
        call_id TEXT NOT NULL,
        description TEXT NOT NULL,
        provider TEXT NOT NULL,
        recipient TEXT,
        text TEXT NOT NULL,
        sender TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        ${leaseColumnsDdl(['attempts', 'interrupted'])},
        not_before INTEGER NOT NULL,
        ${leaseColumnsDdl(['next_at', 'lease_until', 'claimed_by'])},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT,
        provider_message_id TEXT
      );
      CREATE INDEX sms_messages_due ON sms_messages (status, next_at);
      CREATE INDEX sms_messages_call ON sms_messages (call_id, created_at);
      CREATE INDEX sms_messages_recipient ON sms_messages (recipient, created_at);
      CREATE INDEX sms_messages_created ON sms_messages (created_at);

      CREATE TABLE sms_once (
        call_id TEXT NOT NULL,
        key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (call_id, key)
      ) WITHOUT ROWID;

      CREATE TABLE sms_attempts (
        message_id TEXT NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        http_status INTEGER,
        body TEXT,
        latency_ms INTEGER,
        error TEXT,
        worker TEXT,
        PRIMARY KEY (message_id, attempt)
      ) WITHOUT ROWID;
    `,
  },
  {
    // SQLite cannot change a CHECK constraint in place, so the table is rebuilt. The attempts table
    // is rebuilt with it: dropping the old messages table while attempts still referenced it would
    // cascade-delete every attempt. Renaming the new tables rewrites their references.
    id: 'sms/002-blocked-and-note',
    // PostgreSQL changes a CHECK in place: no rebuild
    postgres: `
      ALTER TABLE sms_messages DROP CONSTRAINT sms_messages_status_check,
        ADD CONSTRAINT sms_messages_status_check CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'blocked'));
      ALTER TABLE sms_messages ADD COLUMN note TEXT;
    `,
    up: `
      CREATE TABLE sms_messages_new (
        id TEXT PRIMARY KEY,
        call_id TEXT NOT NULL,
        description TEXT NOT NULL,
        provider TEXT NOT NULL,
        recipient TEXT,
        text TEXT NOT NULL,
        sender TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'blocked')),
        ${leaseColumnsDdl(['attempts', 'interrupted'])},
        not_before INTEGER NOT NULL,
        ${leaseColumnsDdl(['next_at', 'lease_until', 'claimed_by'])},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT,
        provider_message_id TEXT,
        note TEXT
      );
      INSERT INTO sms_messages_new (id, call_id, description, provider, recipient, text, sender, status, attempts,
          interrupted, not_before, next_at, lease_until, claimed_by, created_at, updated_at, settled_at, reason,
          provider_message_id)
        SELECT id, call_id, description, provider, recipient, text, sender, status, attempts, interrupted,
          not_before, next_at, lease_until, claimed_by, created_at, updated_at, settled_at, reason, provider_message_id
        FROM sms_messages;
      CREATE TABLE sms_attempts_new (
        message_id TEXT NOT NULL REFERENCES sms_messages_new (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        http_status INTEGER,
        body TEXT,
        latency_ms INTEGER,
        error TEXT,
        worker TEXT,
        PRIMARY KEY (message_id, attempt)
      ) WITHOUT ROWID;
      INSERT INTO sms_attempts_new SELECT message_id, attempt, started_at, finished_at, outcome, reason,
          http_status, body, latency_ms, error, worker FROM sms_attempts;
      DROP TABLE sms_attempts;
      DROP TABLE sms_messages;
      ALTER TABLE sms_messages_new RENAME TO sms_messages;
      ALTER TABLE sms_attempts_new RENAME TO sms_attempts;
      CREATE INDEX sms_messages_due ON sms_messages (status, next_at);
      CREATE INDEX sms_messages_call ON sms_messages (call_id, created_at);
      CREATE INDEX sms_messages_recipient ON sms_messages (recipient, created_at);
      CREATE INDEX sms_messages_created ON sms_messages (created_at);
    `,
  },
  ...limitMigrations,
  ...receiptMigrations,
  {
    // The status CHECK gains 'unknown' (at-most-once providers). As in 002 every table that refers
    // to sms_messages is rebuilt with it, or dropping the old one would cascade-delete its rows.
    id: 'sms/005-unknown-status',
    postgres: `
      ALTER TABLE sms_messages DROP CONSTRAINT sms_messages_status_check,
        ADD CONSTRAINT sms_messages_status_check CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'skipped', 'blocked'));
    `,
    up: `
      CREATE TABLE sms_messages_new (
        id TEXT PRIMARY KEY,
        call_id TEXT NOT NULL,
        description TEXT NOT NULL,
        provider TEXT NOT NULL,
        recipient TEXT,
        text TEXT NOT NULL,
        sender TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'skipped', 'blocked')),
        ${leaseColumnsDdl(['attempts', 'interrupted'])},
        not_before INTEGER NOT NULL,
        ${leaseColumnsDdl(['next_at', 'lease_until', 'claimed_by'])},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT,
        provider_message_id TEXT,
        note TEXT,
        delivery_status TEXT,
        delivery_at INTEGER,
        delivery_error TEXT
      );
      INSERT INTO sms_messages_new SELECT id, call_id, description, provider, recipient, text, sender, status, attempts,
          interrupted, not_before, next_at, lease_until, claimed_by, created_at, updated_at, settled_at, reason,
          provider_message_id, note, delivery_status, delivery_at, delivery_error FROM sms_messages;
      CREATE TABLE sms_attempts_new (
        message_id TEXT NOT NULL REFERENCES sms_messages_new (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        http_status INTEGER,
        body TEXT,
        latency_ms INTEGER,
        error TEXT,
        worker TEXT,
        PRIMARY KEY (message_id, attempt)
      ) WITHOUT ROWID;
      INSERT INTO sms_attempts_new SELECT message_id, attempt, started_at, finished_at, outcome, reason,
          http_status, body, latency_ms, error, worker FROM sms_attempts;
      CREATE TABLE sms_receipts_new (
        message_id TEXT NOT NULL REFERENCES sms_messages_new (id) ON DELETE CASCADE,
        received_at INTEGER NOT NULL,
        status TEXT,
        provider_status TEXT NOT NULL,
        error_code TEXT
      );
      INSERT INTO sms_receipts_new SELECT message_id, received_at, status, provider_status, error_code FROM sms_receipts;
      DROP TABLE sms_receipts;
      DROP TABLE sms_attempts;
      DROP TABLE sms_messages;
      ALTER TABLE sms_messages_new RENAME TO sms_messages;
      ALTER TABLE sms_attempts_new RENAME TO sms_attempts;
      ALTER TABLE sms_receipts_new RENAME TO sms_receipts;
      CREATE INDEX sms_messages_due ON sms_messages (status, next_at);
      CREATE INDEX sms_messages_call ON sms_messages (call_id, created_at);
      CREATE INDEX sms_messages_recipient ON sms_messages (recipient, created_at);
      CREATE INDEX sms_messages_created ON sms_messages (created_at);
      CREATE INDEX sms_messages_description ON sms_messages (description, created_at);
      CREATE INDEX sms_messages_provider_id ON sms_messages (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
      CREATE INDEX sms_receipts_message ON sms_receipts (message_id, received_at);
    `,
  },
];

export interface DueRow {
  id: string;
  call_id: string;
  description: string;
  provider: string;
  recipient: string;
  text: string;
  sender: string | null;
  status: 'pending' | 'sending';
  attempts: number;
  interrupted: number;
}

export const smsQueue: LeasedTableSpec<DueRow> = {
  table: 'sms_messages',
  key: 'id',
  attempts: { table: 'sms_attempts', key: 'message_id' },
  columns: 'id, call_id, description, provider, recipient, text, sender, status, attempts, interrupted',
  order: ['next_at'],
  countsAttemptOnClaim: true,
};

// The worker writes a batch's results with one statement per table (see rowsFrom).
const finishAttempts = rowsFrom(
  'attempts',
  'v',
  { message_id: 'text', attempt: 'bigint', outcome: 'text', reason: 'text', http_status: 'bigint', body: 'text', latency_ms: 'bigint', error: 'text' },
  (from) =>
    `UPDATE sms_attempts AS a SET finished_at = @now, outcome = v.outcome, reason = v.reason, http_status = v.http_status,
       body = v.body, latency_ms = v.latency_ms, error = v.error
      FROM ${from} WHERE a.message_id = v.message_id AND a.attempt = v.attempt`,
);

const settle = rowsFrom(
  'rows',
  'v',
  { row_key: 'text', attempt: 'bigint', status: 'text', next_at: 'bigint', reason: 'text', cancelled: 'bigint', provider_message_id: 'text', settled_at: 'bigint' },
  // v's key is not named `id`: SQLite's RETURNING names no alias, and PostgreSQL would find `id` ambiguous
  (from) =>
    `UPDATE sms_messages AS m
        SET status = v.status, next_at = v.next_at, reason = v.reason, interrupted = m.interrupted + v.cancelled,
            provider_message_id = COALESCE(v.provider_message_id, m.provider_message_id), lease_until = NULL,
            updated_at = @now, settled_at = v.settled_at
       FROM ${from}
      WHERE m.id = v.row_key AND m.status = 'sending' AND m.claimed_by = @worker AND m.attempts = v.attempt
      RETURNING id`,
);

/** Every statement the outbox runs besides the lease's. */
export function prepareStatements() {
  return {
    hasOnce: statement<[string, string], { one: number }>('SELECT 1 AS one FROM sms_once WHERE call_id = ? AND key = ?'),
    insertOnce: statement<[string, string, number]>(
      'INSERT INTO sms_once (call_id, key, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    insert: statement<[Record<string, string | number | null>]>(
      `INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, sender, status,
         not_before, next_at, created_at, updated_at, note)
       VALUES (@id, @callId, @description, @provider, @to, @text, @sender, 'pending',
         @notBefore, @notBefore, @now, @now, @note)`,
    ),
    insertSkipped: statement<[Record<string, string | number | null>]>(
      `INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, sender, status,
         not_before, created_at, updated_at, settled_at, reason, note)
       VALUES (@id, @callId, @description, @provider, @to, @text, @sender, @status, @notBefore, @now, @now, @now,
         @reason, @note)`,
    ),
    // The worker writes a batch's attempt rows in one statement (see rowsFrom).
    startAttempts: statement<[{ rows: Rows; now: number; worker: string }]>(
      rowsFrom('rows', 'v', { message_id: 'text', attempt: 'bigint' }, (from) =>
        `INSERT INTO sms_attempts (message_id, attempt, started_at, outcome, worker)
         SELECT v.message_id, v.attempt, @now, 'sending', @worker FROM ${from}`,
      ),
    ),
    finishAttempts: statement<[{ attempts: Rows; now: number }]>(finishAttempts),
    /** Returns the ids still this worker's (a row whose lease ran out may be another's now). */
    settle: statement<[{ rows: Rows; now: number; worker: string }], { id: string }>(settle),
    // On PostgreSQL both in one statement (a data-modifying WITH), which is its own transaction:
    // one round trip for a batch's results instead of BEGIN, two statements and COMMIT. SQLite,
    // in-process, has no data-modifying WITH and needs none.
    recordPostgres: statement<[{ attempts: Rows; rows: Rows; now: number; worker: string }], { id: string }>(
      `WITH finished AS (${finishAttempts.postgres}) ${settle.postgres}`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
