import type { CountryCode } from 'libphonenumber-js';
import type { Dispatcher } from 'undici';
import type { CallEvent } from '../../asterisk/call-event-types.js';
import type { Logger } from '../../log.js';
import type { AmiMessage } from '../../asterisk/ami.js';
import { readQuery } from '../../history/query.js';
import { statement, type StorePort } from '../../store/port.js';
import type { Store } from '../../store/port.js';
import { TokenProvider } from './auth.js';
import { SalesforceClient } from './client.js';
import type { SalesforceConfig } from './config.js';
import { ACTIVITY_STATUSES, type ActivityStatus } from './store.js';
import type { CallSnapshot } from './task.js';
import { UsageMeter, type UsageReading } from './usage.js';
import { SalesforceWorker } from './worker.js';

/**
 * Salesforce activity logging as the service sees it: call events (and the channel variables
 * click-to-call sets) in, one Task per call out, plus a health summary and a per-call log.
 *
 * What a call is made of comes from the call-event tracker (src/asterisk/call-events.ts): call.start
 * (dial start, and the dialplan context that tells an outbound call from an inbound one),
 * call.answer (call start), call.end (call end, talk time), the queue events (queue, wait).
 * Channel variables (the click-to-call record id, a memo) are read from AMI VarSet events, keyed
 * by the call's linkedid like everything else.
 */

export interface SalesforceLoggingOptions {
  config: SalesforceConfig;
  store: Store;
  log: Logger;
  logLevel?: string;
  ami?: { on(event: string, fn: (ev: AmiMessage) => void): () => void };
  defaultCountry?: CountryCode;
  dispatcher?: Dispatcher;
}

export interface SalesforceHealth {
  backlog: number;
  /** Calls whose Task was created at their start and is updated when they end. */
  inProgress: number;
  failedLastDay: number;
  loggedLastDay: number;
  /** Average data requests per call logged in the last 24 h (those the org's allowance counts). */
  apiCallsPerCall: number | null;
  /** Requests Salesforce refused unauthenticated (401, an expired session) in the last 24 h: not counted above, nor by the org. */
  refusedLastDay: number;
  usage: UsageReading | null;
  tokenRequests: number;
  warnings: string[];
}

export interface SalesforceLogging {
  readonly worker: SalesforceWorker;
  readonly usage: UsageMeter;
  readonly auth: TokenProvider;
  onEvent(ev: CallEvent): void;
  /** Logs calls idle past the stale limit (runs every 10 minutes by itself). */
  sweep(now?: number): void;
  start(): void;
  /** Another instance on this store has gone: its activities may be ours to log now. */
  wake(): void;
  stop(): Promise<void>;
  health(): Promise<SalesforceHealth>;
  /** GET /salesforce/activities?callId=&status=&limit= */
  activitiesRoute(url: URL): Promise<{ status: number; body: unknown }>;
  /** A memo after the call (POST /salesforce/memo, the AMI UserEvent): the call's Task is written again once. */
  memo(callId: string, memo: string, via: string): Promise<'unknown' | 'unchanged' | 'changed'>;
  /** POST /salesforce/memo {"callId": "…", "memo": "…"} */
  memoRoute(body: unknown): Promise<{ status: number; body: unknown }>;
}

/** Salesforce's own cap on a Task's Description; a memo longer than that is refused. */
const MEMO_MAX = 32_000;

interface LiveCall {
  callId: string;
  /** This process saw the call begin (not only later events of it, after a restart). */
  sawStart: boolean;
  /** A call event arrived (not only a channel variable). */
  hadEvent: boolean;
  lastSeen: number;
  dialStart: number;
  callStart?: number;
  callEnd?: number;
  context?: string;
  vars: Record<string, string>;
  variables: Record<string, string>;
  startQueued: boolean;
}

/** A queued activity older than this means Salesforce has been out of reach for long. */
const WARN_BACKLOG_AGE_MS = 10 * 60_000;
/**
 * A call with no event for this long has an end nobody will report (the call-event tracker forgets
 * such calls after 4 idle hours): its activity is logged with what is known rather than lost.
 */
const STALE_AFTER_MS = 5 * 3_600_000;

export function createSalesforceLogging(opts: SalesforceLoggingOptions): SalesforceLogging {
  const cfg = opts.config;
  const log = opts.log.child({ component: 'salesforce' });
  const usage = new UsageMeter();
  const auth = new TokenProvider({ config: cfg, dispatcher: opts.dispatcher, log });
  const client = new SalesforceClient({ auth, apiVersion: cfg.apiVersion, timeoutMs: cfg.timeout, usage, dispatcher: opts.dispatcher, log });
  const worker = new SalesforceWorker({ store: opts.store, client, config: cfg, defaultCountry: opts.defaultCountry, logger: log, logLevel: opts.logLevel });
  const live = new Map<string, LiveCall>();
  const watched = new Set([cfg.recordIdVariable, ...cfg.variables]);
  const outbound = new Set(cfg.outboundContexts);
  let unsubscribe: Array<() => void> = [];

  const callFor = (callId: string, at: number): LiveCall => {
    let c = live.get(callId);
    if (!c) {
      c = { callId, sawStart: false, hadEvent: false, lastSeen: at, dialStart: at, vars: {}, variables: {}, startQueued: false };
      live.set(callId, c);
    }
    return c;
  };

  const snapshot = (c: LiveCall): CallSnapshot => {
    const direction = c.context !== undefined && outbound.has(c.context) ? 'outbound' : 'inbound';
    const vars = { ...c.vars, ...c.variables };
    return {
      callId: c.callId,
      direction,
      number: (direction === 'outbound' ? vars.called || vars.did : vars.caller) ?? '',
      dialStart: c.dialStart,
      ...(c.callStart !== undefined ? { callStart: c.callStart } : {}),
      ...(c.callEnd !== undefined ? { callEnd: c.callEnd } : {}),
      answered: c.callStart !== undefined || vars.answered === 'yes',
      vars,
    };
  };

  const onEvent = (ev: CallEvent): void => {
    try {
      const c = callFor(ev.callId, ev.at);
      c.lastSeen = Math.max(c.lastSeen, ev.at);
      c.hadEvent = true;
      for (const [k, v] of Object.entries(ev.vars)) if (v !== '' || !(k in c.vars)) c.vars[k] = v;
      if (ev.kind === 'call.start') {
        c.sawStart = true;
        c.dialStart = ev.at;
        if (ev.vars.context !== undefined) c.context = ev.vars.context;
      } else if (ev.kind === 'call.answer') {
        c.callStart ??= ev.at;
      }
      if (ev.kind === cfg.when && ev.kind !== 'call.end' && !c.startQueued) {
        c.startQueued = true;
        const start = snapshot(c);
        inOrder(() => worker.enqueueStart(start, ev.kind === 'call.start' ? cfg.startDelay : 0), ev.callId, ev.kind);
      }
      if (ev.kind === 'call.end') {
        c.callEnd = ev.at;
        const end = snapshot(c);
        inOrder(() => worker.enqueueEnd(end, c.sawStart), ev.callId, ev.kind);
        live.delete(ev.callId);
      }
    } catch (e) {
      // The store refused the write (disk full, locked past busy_timeout): say so loudly.
      log.error({ err: e, callId: ev.callId, event: ev.kind }, 'salesforce activity could not be queued');
    }
  };

  const onVarSet = (ev: AmiMessage): void => {
    try {
      const name = variableName(ev.variable);
      const callId = ev.linkedid || ev.uniqueid;
      if (!name || !watched.has(name) || !callId || typeof ev.value !== 'string' || !ev.value) return;
      const c = callFor(callId, Date.now());
      c.variables[name] = ev.value;
      log.debug({ callId, variable: name }, 'salesforce: channel variable seen');
      if (c.startQueued) {
        const now = snapshot(c);
        inOrder(() => worker.refresh(now), c.callId, 'refresh');
      }
    } catch (e) {
      log.error({ err: e }, 'salesforce: a channel variable could not be read');
    }
  };

  const memo = async (callId: string, text: string, via: string): Promise<'unknown' | 'unchanged' | 'changed'> => {
    const c = live.get(callId);
    let result: 'unknown' | 'unchanged' | 'changed';
    if (c) {
      // The call is still on: its end carries the memo; a Task made at its start keeps it too, so
      // the same memo after the end changes nothing. Set before the store is asked, so an end
      // that arrives meanwhile carries it.
      const before = c.variables.memo;
      c.variables.memo = text;
      const stored = await worker.memo(callId, text);
      result = before === text && stored !== 'changed' ? 'unchanged' : 'changed';
    } else {
      result = await worker.memo(callId, text);
    }
    const line = { callId, via, result, chars: text.length };
    if (result === 'unknown') log.warn(line, 'salesforce memo for a call with no activity');
    else log.info(line, 'salesforce memo');
    return result;
  };

  const onUserEvent = (ev: AmiMessage): void => {
    try {
      if (ev.userevent !== cfg.memoEvent) return;
      const callId = typeof ev.callid === 'string' ? ev.callid.trim() : '';
      const text = typeof ev.memo === 'string' ? ev.memo.trim() : '';
      if (!callId || !text) {
        log.warn({ userEvent: ev.userevent, hasCallId: Boolean(callId), hasMemo: Boolean(text) }, `salesforce: UserEvent ${cfg.memoEvent} needs CallId and Memo`);
        return;
      }
      memo(callId, text.slice(0, MEMO_MAX), 'ami').catch((e: unknown) => log.error({ err: e }, 'salesforce: a memo UserEvent could not be stored'));
    } catch (e) {
      log.error({ err: e }, 'salesforce: a memo UserEvent could not be stored');
    }
  };

  /**
   * The store's writes for calls, one after another in the order the events came: on PostgreSQL
   * two writes may otherwise take two connections and land the other way round (an end before
   * its start). A write that fails is logged; the next one still runs.
   */
  let writes: Promise<void> = Promise.resolve();
  const inOrder = (write: () => Promise<void>, callId: string, event: string): void => {
    writes = writes.then(write).catch((e: unknown) => {
      // The store refused the write (disk full, locked past busy_timeout): say so loudly.
      log.error({ err: e, callId, event }, 'salesforce activity could not be queued');
    });
  };

  /** Logs calls whose end will never be reported, with what is known. */
  const sweep = (now: number = Date.now()): void => {
    for (const c of [...live.values()]) {
      if (now - c.lastSeen < STALE_AFTER_MS) continue;
      live.delete(c.callId);
      // Variables of a call no event was seen for: nothing to log.
      if (!c.hadEvent) continue;
      try {
        c.vars.causeText ||= 'the end of the call was never seen';
        const end = snapshot(c);
        inOrder(() => worker.enqueueEnd(end, c.sawStart), c.callId, 'call.end');
        log.warn({ callId: c.callId, lastSeen: new Date(c.lastSeen).toISOString() }, 'salesforce: the end of a call was never seen; logging what is known');
      } catch (e) {
        log.error({ err: e, callId: c.callId }, 'salesforce activity could not be queued');
      }
    }
  };
  let sweeper: NodeJS.Timeout | undefined;

  const statusCounts = statement<[], { status: ActivityStatus; n: number; oldest: number | null }>(
    `SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM sf_activities WHERE status IN ('pending', 'sending', 'waiting') GROUP BY status`,
  );
  const lastDay = statement<[number], { status: ActivityStatus; n: number; calls: number; refused: number; lastReason: string | null }>(
    `SELECT status, COUNT(*) AS n, SUM(api_calls) AS calls, SUM(refused_calls) AS refused, MAX(reason) AS "lastReason" FROM sf_activities
      WHERE settled_at >= ? AND status IN ('done', 'failed') AND match_rule IS DISTINCT FROM 'internal' GROUP BY status`,
  );

  return {
    worker,
    usage,
    auth,
    onEvent,
    sweep,
    start() {
      if (opts.ami && !unsubscribe.length) unsubscribe = [opts.ami.on('varset', onVarSet), opts.ami.on('userevent', onUserEvent)];
      sweeper ??= setInterval(() => sweep(), 10 * 60_000);
      sweeper.unref();
      worker.start();
    },
    wake: () => worker.wake(),
    async stop() {
      for (const u of unsubscribe.splice(0)) u();
      clearInterval(sweeper);
      sweeper = undefined;
      await writes;
      await worker.stop({ graceMs: 2_000 });
    },
    async health() {
      const now = Date.now();
      const counts = await statusCounts.all(opts.store);
      const day = await lastDay.all(opts.store, now - 86_400_000);
      const n = (s: ActivityStatus) => counts.find((c) => c.status === s)?.n ?? 0;
      const done = day.find((d) => d.status === 'done');
      const failed = day.find((d) => d.status === 'failed');
      const backlog = n('pending') + n('sending');
      const oldest = counts.filter((c) => c.status !== 'waiting').reduce<number | null>((m, c) => (c.oldest !== null && (m === null || c.oldest < m) ? c.oldest : m), null);
      const warnings = usage.warnings(cfg.usageWarning, now);
      if (auth.lastError) warnings.push(`Salesforce authentication failing since ${new Date(auth.lastError.at).toISOString()}: ${auth.lastError.reason}`);
      if (failed?.n) warnings.push(`${failed.n} Salesforce activit${failed.n === 1 ? 'y' : 'ies'} failed in the last 24 h (see /salesforce/activities?status=failed)`);
      if (oldest !== null && now - oldest > WARN_BACKLOG_AGE_MS) warnings.push(`${backlog} Salesforce activit${backlog === 1 ? 'y' : 'ies'} waiting to be written, the oldest since ${new Date(oldest).toISOString()}`);
      return {
        backlog,
        inProgress: n('waiting'),
        failedLastDay: failed?.n ?? 0,
        loggedLastDay: done?.n ?? 0,
        apiCallsPerCall: done?.n ? Math.round((done.calls / done.n) * 100) / 100 : null,
        refusedLastDay: (done?.refused ?? 0) + (failed?.refused ?? 0),
        usage: usage.last ?? null,
        tokenRequests: auth.requests,
        warnings,
      };
    },
    memo,
    async memoRoute(body) {
      const b = body as { callId?: unknown; memo?: unknown } | null;
      if (!b || typeof b !== 'object' || typeof b.callId !== 'string' || !b.callId.trim()) return { status: 400, body: { error: 'callId: the call id (Asterisk linkedid, the Task\'s CallObject) is required' } };
      if (typeof b.memo !== 'string' || !b.memo.trim()) return { status: 400, body: { error: 'memo: a non-empty string is required' } };
      if (b.memo.length > MEMO_MAX) return { status: 400, body: { error: `memo: at most ${MEMO_MAX} characters` } };
      const callId = b.callId.trim();
      const result = await memo(callId, b.memo.trim(), 'api');
      if (result === 'unknown') return { status: 404, body: { error: `no Salesforce activity for call ${callId}` } };
      return { status: 200, body: { callId, changed: result === 'changed' } };
    },
    async activitiesRoute(url) {
      try {
        return { status: 200, body: await queryActivities(opts.store, url.searchParams) };
      } catch (e) {
        if (e instanceof RangeError) return { status: 400, body: { error: e.message } };
        throw e;
      }
    },
  };
}

/**
 * VarSet's variable name. asterisk-manager turns every `Variable:` line into an object keyed by
 * what precedes "=" (meant for ChanVariable lists), so `Variable: SF_RECORD_ID` arrives as
 * `{ SF_RECORD_ID: '' }`. Inherited variables (`__NAME`) count as NAME.
 */
export function variableName(raw: unknown): string | undefined {
  const name = typeof raw === 'string' ? raw : raw && typeof raw === 'object' ? Object.keys(raw)[0] : undefined;
  return name?.replace(/^_{1,2}/, '');
}

/** The per-call log: each call's Task, record, API calls, and every attempt with its requests. */
export async function queryActivities(store: StorePort, q: URLSearchParams): Promise<{ entries: unknown[] }> {
  const r = readQuery(q, ['callId', 'status', 'limit']);
  const callId = r.text('callId');
  const statuses = r.oneOf('status', ACTIVITY_STATUSES);
  const limit = r.count('limit') ?? 50;
  const where: string[] = [];
  const args: Array<string | number> = [];
  if (callId) {
    where.push('call_id = ?');
    args.push(callId);
  }
  if (statuses.length) {
    where.push(`status IN (${statuses.map(() => '?').join(', ')})`);
    args.push(...statuses);
  }
  const rows = await store.query(
    `SELECT call_id, phase, status, synced, task_id, record_id, record_type, match_rule, api_calls, refused_calls, memo, attempts, reason, created_at, settled_at
       FROM sf_activities ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC LIMIT ?`,
    [...args, Math.min(500, limit)],
  );
  const attemptsOf = async (callId: string) =>
    (await store.query('SELECT attempt, phase, started_at, finished_at, outcome, reason, requests FROM sf_attempts WHERE call_id = ? ORDER BY attempt', [callId])).map(
      (a) => ({ ...a, requests: a.requests ? (JSON.parse(String(a.requests)) as unknown) : [] }),
    );
  const logs = await Promise.all(rows.map((r) => attemptsOf(String(r.call_id))));
  return {
    entries: rows.map((r, i) => ({
      callId: r.call_id,
      status: r.status,
      phase: r.phase,
      synced: r.synced,
      taskId: r.task_id,
      recordId: r.record_id,
      recordType: r.record_type,
      matchRule: r.match_rule,
      apiCalls: r.api_calls,
      refusedCalls: r.refused_calls,
      memo: r.memo,
      attempts: r.attempts,
      reason: r.reason,
      createdAt: r.created_at,
      settledAt: r.settled_at,
      attemptLog: logs[i],
    })),
  };
}
