import { readLogQuery } from '../history/query.js';
import type { Store } from '../store/port.js';
import { whereClause } from '../store/where.js';
import { RUN_STATUSES, type HookAttemptOutcome, type RunMode, type RunStatus } from './store.js';
import type { LoggedRequest } from '../http/redact.js';

/**
 * The execution log (CA6): every hook run with every attempt — the request as sent (credentials
 * redacted), the answer (status, headers, the start of the body), timings, the outcome and the
 * variables it extracted — per call and per hook. BIZTEL admits it cannot show results and sends
 * users to the vendor; this is what they would have needed.
 */

export interface HookLogFilter {
  callId?: string;
  hook?: string;
  event?: string;
  status?: readonly RunStatus[];
  since?: number;
  until?: number;
  /** Default 50, at most 500. */
  limit?: number;
  offset?: number;
}

export interface HookLogAttempt {
  attempt: number;
  startedAt: number;
  finishedAt: number | null;
  outcome: HookAttemptOutcome;
  reason: string | null;
  request: LoggedRequest | null;
  response: { status: number | null; headers: Record<string, string>; body: string | null; truncated: boolean } | null;
  latencyMs: number | null;
  error: string | null;
  extracted: Record<string, unknown> | null;
}

export interface HookLogEntry {
  id: string;
  time: number;
  callId: string;
  event: string;
  hook: string;
  /** Position in its call's chain of queued runs (0 first); 0 for inline runs. */
  order: number;
  mode: RunMode;
  status: RunStatus;
  reason: string | null;
  attempts: number;
  settledAt: number | null;
  /** The call's variables the run was queued with. */
  vars: Record<string, string>;
  extracted: Record<string, string> | null;
  attemptLog: HookLogAttempt[];
}

export const MAX_LOG_LIMIT = 500;

interface RunRow {
  id: string;
  created_at: number;
  call_id: string;
  event: string;
  hook: string;
  seq: number;
  mode: RunMode;
  status: RunStatus;
  reason: string | null;
  attempts: number;
  settled_at: number | null;
  vars: string;
  extracted: string | null;
}

interface AttemptRow {
  run_id: string;
  attempt: number;
  started_at: number;
  finished_at: number | null;
  outcome: HookAttemptOutcome;
  reason: string | null;
  request: string | null;
  http_status: number | null;
  response_headers: string | null;
  body: string | null;
  truncated: number | null;
  latency_ms: number | null;
  error: string | null;
  extracted: string | null;
}

export async function queryHookLog(store: Store, f: HookLogFilter): Promise<{ total: number; entries: HookLogEntry[] }> {
  const { clause, args } = whereClause({ call_id: f.callId, hook: f.hook, event: f.event }, { status: f.status }, f);
  const limit = Math.min(Math.max(1, f.limit ?? 50), MAX_LOG_LIMIT);
  const offset = Math.max(0, f.offset ?? 0);
  const total = (await store.one<{ n: number }>(`SELECT COUNT(*) AS n FROM hook_runs ${clause}`, args))!.n;
  // Oldest first within a call reads as the call went; the newest calls come first.
  const rows = await store.query<RunRow>(
    `SELECT id, created_at, call_id, event, hook, seq, mode, status, reason, attempts, settled_at, vars, extracted
       FROM hook_runs ${clause} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?`,
    [...args, limit, offset],
  );
  rows.reverse();
  const attempts = new Map<string, HookLogAttempt[]>();
  if (rows.length) {
    const list = await store.query<AttemptRow>(
      `SELECT * FROM hook_attempts WHERE run_id IN (${rows.map(() => '?').join(', ')}) ORDER BY run_id, attempt`,
      rows.map((r) => r.id),
    );
    for (const a of list) {
      let l = attempts.get(a.run_id);
      if (!l) attempts.set(a.run_id, (l = []));
      l.push(attemptOf(a));
    }
  }
  return {
    total,
    entries: rows.map((r) => ({
      id: r.id,
      time: r.created_at,
      callId: r.call_id,
      event: r.event,
      hook: r.hook,
      order: r.seq,
      mode: r.mode,
      status: r.status,
      reason: r.reason,
      attempts: r.attempts,
      settledAt: r.settled_at,
      vars: parse(r.vars) ?? {},
      extracted: parse(r.extracted),
      attemptLog: attempts.get(r.id) ?? [],
    })),
  };
}

function attemptOf(a: AttemptRow): HookLogAttempt {
  const answered = a.http_status !== null;
  return {
    attempt: a.attempt,
    startedAt: a.started_at,
    finishedAt: a.finished_at,
    outcome: a.outcome,
    reason: a.reason,
    request: parse(a.request),
    response: answered ? { status: a.http_status, headers: parse(a.response_headers) ?? {}, body: a.body, truncated: a.truncated === 1 } : null,
    latencyMs: a.latency_ms,
    error: a.error,
    extracted: parse(a.extracted),
  };
}

function parse<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}


/**
 * `/hooks/log?callId=…&hook=…&event=…&status=failed&since=ISO&until=ISO&limit=&offset=`; the CLI
 * builds the same query. An unknown parameter or value is a RangeError (answered 400), so a typo
 * never widens the query to everything.
 */
export function hookLogFilter(q: URLSearchParams): HookLogFilter {
  const r = readLogQuery(q, ['hook', 'event', 'status']);
  const status = r.oneOf('status', RUN_STATUSES);
  return { hook: r.text('hook'), event: r.text('event'), status: status.length ? status : undefined, ...r.page() };
}

export interface HookHealth {
  /** Event runs waiting or being sent. */
  backlog: number;
  oldestPendingAt: number | null;
  /** Hooks whose most recent runs all failed, most failures first. */
  failing: Array<{ hook: string; consecutiveFailures: number; lastReason: string | null; lastFailedAt: number }>;
}

/** Consecutive failures (newest runs first) of each hook whose latest run failed. */
export async function hookHealth(store: Store, window = 500): Promise<HookHealth> {
  const backlog = (await store.one<{ n: number; oldest: number | null }>(
    `SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM hook_runs WHERE mode = 'queued' AND status IN ('pending', 'sending')`,
  ))!;
  const recent = await store.query<{ hook: string; status: 'ok' | 'failed'; reason: string | null; settled_at: number }>(
    `SELECT hook, status, reason, settled_at FROM hook_runs
      WHERE status IN ('ok', 'failed') AND settled_at IS NOT NULL ORDER BY settled_at DESC LIMIT ?`,
    [window],
  );
  const streak = new Map<string, { n: number; reason: string | null; at: number; open: boolean }>();
  for (const r of recent) {
    let s = streak.get(r.hook);
    if (!s) streak.set(r.hook, (s = { n: 0, reason: r.reason, at: r.settled_at, open: true }));
    if (!s.open) continue;
    if (r.status === 'failed') s.n += 1;
    else s.open = false;
  }
  const failing = [...streak.entries()]
    .filter(([, s]) => s.n > 0)
    .map(([hook, s]) => ({ hook, consecutiveFailures: s.n, lastReason: s.reason, lastFailedAt: s.at }))
    .sort((a, b) => b.consecutiveFailures - a.consecutiveFailures);
  return { backlog: backlog.n, oldestPendingAt: backlog.oldest, failing };
}
