import { leaseColumnsDdl, type LeasedTableSpec } from '../../queue/leased-table.js';
import { statement, postgresDdl } from '../../store/port.js';
import type { Migration } from '../../store/port.js';

/**
 * The Salesforce activity tables. One row of `sf_activities` per call is at once the call id →
 * Task id map that makes logging idempotent (SF2) and the call's entry in the durable queue:
 *
 * - `phase`: what the row's call data describes — `start` (the call is under way) or `end`;
 * - `synced`: the phase last written to Salesforce; work remains while it differs from `phase`;
 * - `status`: pending (due at next_at) → sending (claimed, with a lease) → waiting (written at
 *   the start, the call still going) / done / failed;
 * - `create_unknown`: a create went out and its answer never came: before creating again, the
 *   worker asks Salesforce for a Task with this call's CallObject, so a lost answer or a crash
 *   never makes a second Task;
 * - `api_calls`: data requests this call cost (SF7); `refused_calls`: requests Salesforce refused
 *   unauthenticated (401, an expired session), which the org's allowance does not count;
 * - `memo`: the memo given after the call (POST /salesforce/memo or the AMI UserEvent), also in
 *   the stored call's `vars.memo`.
 *
 * `sf_attempts` keeps each attempt with the requests it sent (method, path, status).
 */

export type ActivityStatus = 'pending' | 'sending' | 'waiting' | 'done' | 'failed';
export const ACTIVITY_STATUSES: readonly ActivityStatus[] = ['pending', 'sending', 'waiting', 'done', 'failed'];

export const salesforceMigrations: readonly Migration[] = [
  {
    id: 'crm/salesforce/001-activities',
    get postgres() {
      return postgresDdl(String(salesforceMigrations[0]!.up));
    },
    up: `
      CREATE TABLE sf_activities (
        call_id TEXT PRIMARY KEY,
        phase TEXT NOT NULL CHECK (phase IN ('start', 'end')),
        call TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'waiting', 'done', 'failed')),
        synced TEXT CHECK (synced IN ('start', 'end')),
        task_id TEXT,
        record_id TEXT,
        record_type TEXT,
        match_rule TEXT,
        create_unknown INTEGER NOT NULL DEFAULT 0,
        api_calls INTEGER NOT NULL DEFAULT 0,
        ${leaseColumnsDdl(['attempts'])},
        failures INTEGER NOT NULL DEFAULT 0,
        ${leaseColumnsDdl(['interrupted'])},
        first_failed_at INTEGER,
        ${leaseColumnsDdl(['next_at', 'lease_until', 'claimed_by'])},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT
      );
      CREATE INDEX sf_activities_due ON sf_activities (status, next_at);
      CREATE INDEX sf_activities_created ON sf_activities (created_at);
      CREATE INDEX sf_activities_task ON sf_activities (task_id);

      CREATE TABLE sf_attempts (
        call_id TEXT NOT NULL REFERENCES sf_activities (call_id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        phase TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        requests TEXT,
        worker TEXT,
        PRIMARY KEY (call_id, attempt)
      ) WITHOUT ROWID;
    `,
  },
  {
    id: 'crm/salesforce/002-refused-and-memo',
    up: `
      ALTER TABLE sf_activities ADD COLUMN refused_calls INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE sf_activities ADD COLUMN memo TEXT;
    `,
    postgres: `
      ALTER TABLE sf_activities ADD COLUMN refused_calls BIGINT NOT NULL DEFAULT 0;
      ALTER TABLE sf_activities ADD COLUMN memo TEXT;
    `,
  },
];

export interface ActivityRow {
  call_id: string;
  phase: 'start' | 'end';
  call: string;
  status: ActivityStatus;
  synced: 'start' | 'end' | null;
  task_id: string | null;
  record_id: string | null;
  record_type: string | null;
  match_rule: string | null;
  create_unknown: number;
  api_calls: number;
  memo: string | null;
  attempts: number;
  failures: number;
  interrupted: number;
  first_failed_at: number | null;
}

const COLUMNS = `call_id, phase, call, status, synced, task_id, record_id, record_type, match_rule, create_unknown, api_calls, memo,
  attempts, failures, interrupted, first_failed_at`;

/** Guards every write of an attempt: the row is still ours, in this attempt. */
const MINE = `call_id = @id AND status = 'sending' AND claimed_by = @worker AND attempts = @attempt`;

export const activityQueue: LeasedTableSpec<ActivityRow> = {
  table: 'sf_activities',
  key: 'call_id',
  attempts: { table: 'sf_attempts', key: 'call_id' },
  columns: COLUMNS,
  order: ['next_at', 'created_at'],
  countsAttemptOnClaim: true,
};

/** Every statement the worker runs besides the lease's. */
export function prepareStatements() {
  return {
    insertStart: statement<[Record<string, string | number>]>(
      `INSERT INTO sf_activities (call_id, phase, call, status, next_at, created_at, updated_at)
       VALUES (@id, 'start', @call, 'pending', @nextAt, @now, @now)
       ON CONFLICT (call_id) DO NOTHING`,
    ),
    // The call ended: a waiting (or failed) row has work again; a pending one is due now.
    upsertEnd: statement<[Record<string, string | number>]>(
      `INSERT INTO sf_activities (call_id, phase, call, status, next_at, created_at, updated_at)
       VALUES (@id, 'end', @call, 'pending', @now, @now, @now)
       ON CONFLICT (call_id) DO UPDATE SET
         phase = 'end', call = excluded.call, updated_at = excluded.updated_at,
         next_at = CASE status WHEN 'sending' THEN next_at ELSE excluded.next_at END,
         failures = CASE status WHEN 'failed' THEN 0 ELSE failures END,
         first_failed_at = CASE status WHEN 'failed' THEN NULL ELSE first_failed_at END,
         settled_at = NULL,
         status = CASE status WHEN 'sending' THEN 'sending' ELSE 'pending' END
       WHERE sf_activities.phase = 'start'`,
    ),
    // A click-to-call variable seen after the start was queued, before its record was looked up.
    refreshCall: statement<[string, number, string]>(
      `UPDATE sf_activities SET call = ?, updated_at = ? WHERE call_id = ? AND match_rule IS NULL AND status = 'pending'`,
    ),
    startAttempt: statement<[string, number, string, number, string]>(
      `INSERT INTO sf_attempts (call_id, attempt, phase, started_at, outcome, worker) VALUES (?, ?, ?, ?, 'sending', ?)`,
    ),
    finishAttempt: statement<[Record<string, string | number | null>]>(
      `UPDATE sf_attempts SET finished_at = @now, outcome = @outcome, reason = @reason, requests = @requests
        WHERE call_id = @id AND attempt = @attempt`,
    ),
    saveMatch: statement<[Record<string, string | number | null>]>(
      `UPDATE sf_activities SET record_id = @recordId, record_type = @recordType, match_rule = @rule,
         api_calls = api_calls + @calls, updated_at = @now WHERE ${MINE}`,
    ),
    markCreating: statement<[Record<string, string | number>]>(
      `UPDATE sf_activities SET create_unknown = 1, api_calls = api_calls + @calls, updated_at = @now WHERE ${MINE}`,
    ),
    saveTask: statement<[Record<string, string | number>]>(
      `UPDATE sf_activities SET task_id = @taskId, create_unknown = 0, api_calls = api_calls + @calls, updated_at = @now WHERE ${MINE}`,
    ),
    // The attempt wrote `synced`: done when that is the call's current phase, waiting for the
    // call's end when it was the start, due again at once when the call ended meanwhile — or when
    // a memo came during the attempt (@memo is the one the attempt read), which it did not carry.
    settleOk: statement<[Record<string, string | number | null>]>(
      `UPDATE sf_activities SET
         synced = CASE WHEN memo IS @memo THEN @synced ELSE NULL END,
         api_calls = api_calls + @calls, failures = 0, first_failed_at = NULL,
         status = CASE WHEN phase = @synced AND memo IS @memo THEN (CASE phase WHEN 'end' THEN 'done' ELSE 'waiting' END) ELSE 'pending' END,
         next_at = CASE WHEN phase = @synced AND memo IS @memo THEN NULL ELSE @now END,
         settled_at = CASE WHEN phase = @synced AND memo IS @memo AND phase = 'end' THEN @now ELSE NULL END,
         lease_until = NULL, reason = @reason, updated_at = @now
        WHERE ${MINE}`,
    ),
    settleRetry: statement<[Record<string, string | number | null>]>(
      `UPDATE sf_activities SET status = 'pending', next_at = @nextAt, api_calls = api_calls + @calls,
         failures = failures + @failed, first_failed_at = CASE WHEN @failed = 1 THEN COALESCE(first_failed_at, @now) ELSE first_failed_at END,
         create_unknown = CASE WHEN @unknown = 1 THEN 1 ELSE create_unknown END,
         lease_until = NULL, reason = @reason, updated_at = @now
        WHERE ${MINE}`,
    ),
    settleFailed: statement<[Record<string, string | number | null>]>(
      `UPDATE sf_activities SET status = 'failed', next_at = NULL, api_calls = api_calls + @calls,
         create_unknown = CASE WHEN @unknown = 1 THEN 1 ELSE create_unknown END,
         lease_until = NULL, reason = @reason, updated_at = @now, settled_at = @now
        WHERE ${MINE}`,
    ),
    addRefused: statement<[number, string]>(`UPDATE sf_activities SET refused_calls = refused_calls + ? WHERE call_id = ?`),
    getMemo: statement<[string], { call: string; memo: string | null; status: ActivityStatus }>(`SELECT call, memo, status FROM sf_activities WHERE call_id = ?`),
    // A memo after the call: the stored call carries it; a Task already written is written again
    // (synced cleared), a row still queued or under way just sends the newer data.
    setMemo: statement<[Record<string, string | number>]>(
      `UPDATE sf_activities SET call = @call, memo = @memo, updated_at = @now,
         synced = CASE WHEN status IN ('done', 'failed') THEN NULL ELSE synced END,
         failures = CASE status WHEN 'failed' THEN 0 ELSE failures END,
         first_failed_at = CASE status WHEN 'failed' THEN NULL ELSE first_failed_at END,
         next_at = CASE WHEN status IN ('done', 'failed') THEN @now ELSE next_at END,
         settled_at = CASE WHEN status IN ('done', 'failed') THEN NULL ELSE settled_at END,
         status = CASE WHEN status IN ('done', 'failed') THEN 'pending' ELSE status END
       WHERE call_id = @id`,
    ),
    get: statement<[string], ActivityRow & { status: ActivityStatus; reason: string | null; created_at: number; settled_at: number | null }>(
      `SELECT ${COLUMNS}, reason, created_at, settled_at FROM sf_activities WHERE call_id = ?`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
