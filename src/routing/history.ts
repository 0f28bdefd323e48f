import { randomUUID } from 'node:crypto';
import { readLogQuery } from '../history/query.js';
import { statement, type Queryable, type StorePort, postgresDdl, applyMigrations } from '../store/port.js';
import type { Migration, Store } from '../store/port.js';
import { whereClause } from '../store/where.js';

/**
 * The routing log (R-series, same shape as the SMS history and the hooks log): one row per
 * decision a route step took for a call — the request as sent, the answer as received (start of
 * the body), the latency, and where the caller went and why. A schedule that kept the API from
 * being asked is a row too, so "why did this caller land in the fallback" always has an answer.
 */

export const routeMigrations: readonly Migration[] = [
  {
    id: 'routing/001-log',
    // seq: the order rows of one millisecond were written in, which SQLite's rowid gives
    get postgres() {
      return postgresDdl(String(routeMigrations[0]!.up)).replace('id TEXT PRIMARY KEY,', 'id TEXT PRIMARY KEY,\n        seq BIGSERIAL,');
    },
    up: `
      CREATE TABLE route_log (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        call_id TEXT NOT NULL,
        channel_id TEXT,
        stage TEXT,
        step TEXT NOT NULL,
        integration TEXT,
        caller TEXT,
        method TEXT,
        url TEXT,
        encoding TEXT,
        request_body TEXT,
        http_status INTEGER,
        response_body TEXT,
        latency_ms INTEGER,
        outcome TEXT NOT NULL,
        reason TEXT,
        decision TEXT NOT NULL,
        filler INTEGER NOT NULL DEFAULT 0,
        digits TEXT
      );
      CREATE INDEX route_log_call ON route_log (call_id, created_at);
      CREATE INDEX route_log_time ON route_log (created_at);
      CREATE INDEX route_log_outcome ON route_log (outcome, created_at);
    `,
  },
];

/**
 * How a route step's decision ended: what the log keeps and filters by. Declared here, with the
 * log, so that what the router and its destinations report needs nothing of how it was decided.
 */
export const ROUTE_OUTCOMES = [
  'routed',
  /** the API said status: error */
  'status-error',
  'timeout',
  'connect',
  'transport',
  'http-error',
  'malformed',
  'unknown-result',
  'unknown-destination',
  'outside-schedule',
  'loop-guard',
] as const;
export type Outcome = (typeof ROUTE_OUTCOMES)[number];

/** The start of a body kept in the log: enough to see what the API said, bounded per row. */
export const BODY_EXCERPT_CHARS = 2048;

export interface RouteLogEntry {
  id: string;
  time: number;
  callId: string;
  channelId: string | null;
  stage: string | null;
  step: string;
  integration: string | null;
  caller: string | null;
  method: string | null;
  url: string | null;
  encoding: string | null;
  requestBody: string | null;
  httpStatus: number | null;
  responseBody: string | null;
  latencyMs: number | null;
  outcome: Outcome;
  reason: string | null;
  /** Where the caller went: "queue:vip", "fallback → hangup", … */
  decision: string;
  filler: boolean;
  digits: string | null;
}

export type NewRouteLogEntry = Omit<RouteLogEntry, 'id'> & { id?: string };

export function excerpt(text: string | undefined | null): string | null {
  if (text === undefined || text === null) return null;
  return text.length > BODY_EXCERPT_CHARS ? text.slice(0, BODY_EXCERPT_CHARS) + '…' : text;
}

export interface RouteLog {
  /** Writes the entry on `q` (a group commit's transaction), or on the store. */
  record(entry: NewRouteLogEntry, q?: Queryable): Promise<string>;
  query(filter: RouteLogFilter): Promise<{ total: number; entries: RouteLogEntry[] }>;
}

/** Each field of an entry and its column; the INSERT and the SELECT are made from this one list. */
const COLUMNS: Readonly<Record<keyof RouteLogEntry, string>> = {
  id: 'id',
  time: 'created_at',
  callId: 'call_id',
  channelId: 'channel_id',
  stage: 'stage',
  step: 'step',
  integration: 'integration',
  caller: 'caller',
  method: 'method',
  url: 'url',
  encoding: 'encoding',
  requestBody: 'request_body',
  httpStatus: 'http_status',
  responseBody: 'response_body',
  latencyMs: 'latency_ms',
  outcome: 'outcome',
  reason: 'reason',
  decision: 'decision',
  filler: 'filler',
  digits: 'digits',
};
const FIELDS = Object.keys(COLUMNS) as Array<keyof RouteLogEntry>;
const SELECTED = FIELDS.map((f) => `${COLUMNS[f]} AS "${f}"`).join(', ');

export function createRouteLog(store: Store): RouteLog {
  applyMigrations(store, routeMigrations);
  const insert = statement<[Record<string, unknown>]>(
    `INSERT INTO route_log (${FIELDS.map((f) => COLUMNS[f]).join(', ')}) VALUES (${FIELDS.map((f) => `@${f}`).join(', ')})`,
  );
  return {
    async record(e, q = store) {
      const id = e.id ?? randomUUID();
      await insert.run(q, { ...e, id, requestBody: excerpt(e.requestBody), responseBody: excerpt(e.responseBody), filler: e.filler ? 1 : 0 });
      return id;
    },
    query: (f) => queryRouteLog(store, f),
  };
}

export interface RouteLogFilter {
  callId?: string;
  caller?: string;
  outcome?: readonly Outcome[];
  step?: string;
  since?: number;
  until?: number;
  /** Default 50, at most 500. */
  limit?: number;
  offset?: number;
}

export const MAX_ROUTE_LOG_LIMIT = 500;

/** Newest calls first; within a page, the rows in the order they happened. */
export async function queryRouteLog(store: StorePort, f: RouteLogFilter): Promise<{ total: number; entries: RouteLogEntry[] }> {
  const { clause, args } = whereClause({ call_id: f.callId, caller: f.caller, step: f.step }, { outcome: f.outcome }, f);
  const limit = Math.min(Math.max(1, f.limit ?? 50), MAX_ROUTE_LOG_LIMIT);
  const offset = Math.max(0, f.offset ?? 0);
  const total = (await store.one<{ n: number }>(`SELECT COUNT(*) AS n FROM route_log ${clause}`, args))!.n;
  // the same millisecond: SQLite's insertion order; PostgreSQL's table numbers its rows (seq)
  const rows = await store.query<Omit<RouteLogEntry, 'filler'> & { filler: number }>(
    {
      sqlite: `SELECT ${SELECTED} FROM route_log ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
      postgres: `SELECT ${SELECTED} FROM route_log ${clause} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?`,
    },
    [...args, limit, offset],
  );
  rows.reverse();
  return {
    total,
    entries: rows.map((r) => ({ ...r, filler: r.filler === 1 })),
  };
}


/**
 * `/routes/log?callId=…&caller=…&outcome=timeout&outcome=malformed&step=…&since=ISO&until=ISO&limit=&offset=`;
 * the CLI builds the same query. An unknown parameter or value is a RangeError (answered 400), so
 * a typo never widens the query to everything.
 */
export function routeLogFilter(q: URLSearchParams): RouteLogFilter {
  const r = readLogQuery(q, ['caller', 'outcome', 'step']);
  const outcome = r.oneOf('outcome', ROUTE_OUTCOMES);
  return { caller: r.text('caller'), step: r.text('step'), outcome: outcome.length ? outcome : undefined, ...r.page() };
}
