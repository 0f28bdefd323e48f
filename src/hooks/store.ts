import { leaseColumnsDdl, type LeasedTableSpec } from '../queue/leased-table.js';
import { statement, postgresDdl } from '../store/port.js';
import type { Migration } from '../store/port.js';

/**
 * The hook tables. One row in `hook_runs` is one hook for one event occurrence of one call; it is
 * the durable queue entry (status, lease, next attempt time) and the execution log's head at once,
 * so what is logged can never disagree with what ran. `hook_attempts` keeps every try with its
 * request and answer; `call_vars` holds the variables hooks extracted, per call (CA4).
 *
 * The queued runs of one call form a chain (same `call_id`, ordered by `seq`, which grows across the
 * call's events): a run is due only when every earlier run of its call has settled. That is what
 * makes "the second extracts a value the third sends" work across retries and restarts, lets a
 * call.end hook send the record id a call.start hook got back, and gives a receiver a call's
 * events in the order they happened. `UNIQUE (event_key, hook)` makes an event seen twice (AMI and
 * ARI, or again after a restart) queue its hooks once.
 */

export type RunStatus = 'pending' | 'sending' | 'ok' | 'failed' | 'skipped';
export type RunMode = 'queued' | 'inline';
export type HookAttemptOutcome = 'sending' | 'ok' | 'retry' | 'final' | 'unexpected' | 'interrupted';

export const RUN_STATUSES: readonly RunStatus[] = ['pending', 'sending', 'ok', 'failed', 'skipped'];

export const hookMigrations: readonly Migration[] = [
  {
    id: 'hooks/001-runs',
    get postgres() {
      return postgresDdl(String(hookMigrations[0]!.up));
    },
    up: `
      CREATE TABLE hook_runs (
        id TEXT PRIMARY KEY,
        call_id TEXT NOT NULL,
        event TEXT NOT NULL,
        event_key TEXT NOT NULL,
        hook TEXT NOT NULL,
        seq INTEGER NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('queued', 'inline')),
        vars TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'ok', 'failed', 'skipped')),
        ${leaseColumnsDdl()},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT,
        extracted TEXT,
        UNIQUE (event_key, hook)
      );
      CREATE INDEX hook_runs_due ON hook_runs (status, next_at);
      CREATE INDEX hook_runs_chain ON hook_runs (event_key, seq);
      CREATE INDEX hook_runs_call ON hook_runs (call_id, created_at);
      CREATE INDEX hook_runs_hook ON hook_runs (hook, created_at);
      CREATE INDEX hook_runs_settled ON hook_runs (settled_at);

      CREATE TABLE hook_attempts (
        run_id TEXT NOT NULL REFERENCES hook_runs (id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        request TEXT,
        http_status INTEGER,
        response_headers TEXT,
        body TEXT,
        truncated INTEGER,
        latency_ms INTEGER,
        error TEXT,
        extracted TEXT,
        worker TEXT,
        PRIMARY KEY (run_id, attempt)
      ) WITHOUT ROWID;

      CREATE TABLE call_vars (
        call_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        run_id TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (call_id, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    id: 'hooks/002-call-chain',
    up: `CREATE INDEX hook_runs_call_seq ON hook_runs (call_id, seq);`,
    postgres: `CREATE INDEX hook_runs_call_seq ON hook_runs (call_id, seq);`,
  },
];

export interface RunRow {
  id: string;
  call_id: string;
  event: string;
  event_key: string;
  hook: string;
  seq: number;
  mode: RunMode;
  vars: string;
  status: RunStatus;
  attempts: number;
  interrupted: number;
}

const UNSETTLED_EARLIER = `NOT EXISTS (SELECT 1 FROM hook_runs p
  WHERE p.call_id = r.call_id AND p.mode = 'queued' AND p.seq < r.seq AND p.status IN ('pending', 'sending'))`;

/** The queued runs as a leased table: a run is due only once the earlier runs of its call have settled. */
export const hookQueue: LeasedTableSpec<RunRow> = {
  table: 'hook_runs',
  key: 'id',
  attempts: { table: 'hook_attempts', key: 'run_id' },
  columns: 'r.id, r.call_id, r.event, r.event_key, r.hook, r.seq, r.mode, r.vars, r.status, r.attempts, r.interrupted',
  order: ['r.next_at', 'r.created_at', 'r.seq'],
  queued: "r.mode = 'queued'",
  ready: UNSETTLED_EARLIER,
  // A run may be skipped by its condition once claimed: its attempt is counted when it is sent.
  countsAttemptOnClaim: false,
};

/** Every statement the worker runs besides the lease's. */
export function prepareStatements() {
  return {
    insertRun: statement<[Record<string, string | number | null>]>(
      `INSERT INTO hook_runs (id, call_id, event, event_key, hook, seq, mode, vars, status, next_at,
         lease_until, claimed_by, created_at, updated_at)
       VALUES (@id, @callId, @event, @eventKey, @hook, @seq, @mode, @vars, @status, @nextAt, @leaseUntil, @claimedBy,
         @now, @now)
       ON CONFLICT DO NOTHING`,
    ),
    bumpAttempt: statement<[number, number, string, string, number]>(
      `UPDATE hook_runs SET attempts = attempts + 1, updated_at = ?, lease_until = ?
        WHERE id = ? AND claimed_by = ? AND status = 'sending' AND attempts = ?`,
    ),
    startAttempt: statement<[string, number, number, string, string]>(
      `INSERT INTO hook_attempts (run_id, attempt, started_at, outcome, request, worker) VALUES (?, ?, ?, 'sending', ?, ?)`,
    ),
    finishAttempt: statement<[Record<string, string | number | null>]>(
      `UPDATE hook_attempts SET finished_at = @now, outcome = @outcome, reason = @reason, http_status = @status,
         response_headers = @headers, body = @body, truncated = @truncated, latency_ms = @latency, error = @error,
         extracted = @extracted
        WHERE run_id = @id AND attempt = @attempt`,
    ),
    settle: statement<[Record<string, string | number | null>]>(
      `UPDATE hook_runs
          SET status = @status, next_at = @nextAt, reason = @reason, interrupted = interrupted + @interrupted,
              extracted = COALESCE(@extracted, extracted), lease_until = NULL, updated_at = @now, settled_at = @settledAt
        WHERE id = @id AND status = 'sending' AND claimed_by = @worker AND attempts = @attempts`,
    ),
    putVar: statement<[string, string, string, string, number]>(
      `INSERT INTO call_vars (call_id, name, value, run_id, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (call_id, name) DO UPDATE SET value = excluded.value, run_id = excluded.run_id, updated_at = excluded.updated_at`,
    ),
    lastSeq: statement<[string], { seq: number | null }>(`SELECT MAX(seq) AS seq FROM hook_runs WHERE call_id = ? AND mode = 'queued'`),
    callVars: statement<[string], { name: string; value: string }>('SELECT name, value FROM call_vars WHERE call_id = ?'),
    abandonInlineAttempts: statement<[number, number]>(
      `UPDATE hook_attempts SET outcome = 'interrupted', reason = 'the service stopped during the attempt', finished_at = ?
        WHERE outcome = 'sending' AND run_id IN
          (SELECT id FROM hook_runs WHERE mode = 'inline' AND status IN ('pending', 'sending') AND lease_until <= ?)`,
    ),
    abandonInline: statement<[number, number, number]>(
      `UPDATE hook_runs SET status = 'failed', reason = 'interrupted: the service stopped while the call waited for it',
         lease_until = NULL, next_at = NULL, updated_at = ?, settled_at = ?
        WHERE mode = 'inline' AND status IN ('pending', 'sending') AND lease_until <= ?`,
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
