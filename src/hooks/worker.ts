import { applyMigrations } from '../store/port.js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { CountryCode } from 'libphonenumber-js';
import type { Dispatcher } from 'undici';
import type { CallEvent } from '../asterisk/call-event-types.js';
import type { Logger } from '../log.js';
import { attemptSignal, DurableWorker } from '../queue/durable-worker.js';
import { LeasedTable, retryWait } from '../queue/leased-table.js';
import { excerpt } from '../http/excerpt.js';
import type { Store } from '../store/port.js';
import { storeWrites } from '../store/write-health.js';
import { conditionHolds, prepare, send, type AttemptReport } from './attempt.js';
import { hooksFor, targetsNumber, type Hook } from './config.js';
import { hookMigrations, hookQueue, prepareStatements, type RunRow, type RunStatus, type Statements } from './store.js';

/**
 * Runs hooks (CA1–CA5) and records every attempt (CA6).
 *
 * Event hooks go through a durable queue built like the SMS outbox (src/sms/outbox.ts) and run by
 * the same loop (src/queue/durable-worker.ts) and lease (src/queue/leased-table.ts), on its own
 * tables: the runs of an event are committed before anything is sent; a claimed run holds a lease
 * and its attempt is recorded BEFORE the request goes out; a worker that dies leaves the lease to
 * run out, and whoever takes the run back (the restarted process) writes the lost attempt off as
 * interrupted and sends it again with the same Idempotency-Key. A retry wait is a `next_at` in the
 * row, so a restart during the wait resumes it rather than starting over: no attempt is lost and
 * none already answered is repeated.
 *
 * What differs from the SMS outbox, and why it is a sibling rather than the same queue: the hooks
 * of one call run as an ordered chain, event after event and by `order` within an event (a run
 * waits until the earlier ones have settled, so a value one extracts reaches the next), the
 * condition is checked when the run's turn comes (it may test an earlier hook's result), and an
 * answer sets call variables. Different calls run in parallel.
 *
 * Inline runs (a `hook` step) are the same rows and attempts, executed by the calling step while
 * the caller waits; they are never picked up by the queue, and one cut off by a crash is marked
 * failed at the next start (its caller is gone with the process).
 */

export interface HookWorkerOptions {
  store: Store;
  hooks: readonly Hook[];
  /** Values to redact from logged requests (env secrets). */
  secrets?: readonly string[];
  /** How DIDs without + are read when matching `numbers`. */
  defaultCountry?: CountryCode;
  /** Runs in flight at once. Default 8. */
  concurrency?: number;
  /** Added to a hook's timeout to form the lease. Default 2 s. */
  leaseMarginMs?: number;
  /** Upper bound on a Retry-After the endpoint asks for. Default 10 min. */
  maxRetryAfterMs?: number;
  /** A run cut off this many times fails instead of looping. Default 5. */
  maxInterruptions?: number;
  workerId?: string;
  dispatcher?: Dispatcher;
  logger?: Logger;
}

export interface SettledRun {
  id: string;
  callId: string;
  event: string;
  hook: string;
  status: Exclude<RunStatus, 'pending' | 'sending'>;
  attempts: number;
  reason: string;
  extracted: Record<string, string>;
}

export interface InlineContext {
  callId: string;
  vars: Readonly<Record<string, string>>;
  /** The call ended: no further retries (an attempt under way still finishes and is logged). */
  signal?: AbortSignal;
}

export interface InlineResult {
  status: SettledRun['status'];
  reason: string;
  attempts: number;
  extracted: Record<string, string>;
  durationMs: number;
}

type Next = { status: RunStatus; nextAt: number | null; reason: string };

export class HookWorker extends EventEmitter<{ settled: [SettledRun]; attempt: [{ runId: string; hook: string; outcome: string }] }> {
  readonly workerId: string;
  private readonly store: Store;
  private readonly byName: Map<string, Hook>;
  private readonly hooks: readonly Hook[];
  private readonly secrets: readonly string[];
  private readonly defaultCountry?: CountryCode;
  private readonly leaseMarginMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly dispatcher?: Dispatcher;
  private readonly log?: Logger;
  private readonly sql: Statements;
  private readonly runs: LeasedTable<RunRow>;
  private readonly worker: DurableWorker<RunRow>;

  constructor(opts: HookWorkerOptions) {
    super();
    this.store = opts.store;
    this.hooks = opts.hooks;
    this.byName = new Map(opts.hooks.map((h) => [h.name, h]));
    this.secrets = [...(opts.secrets ?? []), ...opts.hooks.flatMap((h) => (h.secret ? [h.secret] : []))];
    this.defaultCountry = opts.defaultCountry;
    this.leaseMarginMs = opts.leaseMarginMs ?? 2_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 600_000;
    this.workerId = opts.workerId ?? `hooks-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.dispatcher = opts.dispatcher;
    this.log = opts.logger;
    applyMigrations(this.store, hookMigrations);
    this.sql = prepareStatements();
    this.runs = new LeasedTable(this.store, hookQueue, { worker: this.workerId, maxInterruptions: opts.maxInterruptions ?? 5 });
    this.worker = new DurableWorker<RunRow>(
      {
        id: (row) => row.id,
        claim: (_room, busy) => this.claimRuns(busy),
        nextWakeAt: (busy) => this.runs.nextWakeAt(busy),
        deliver: (row, stopping) => this.deliver(row, stopping),
        deliverFailed: (row, e) => this.log?.error({ err: e, runId: row.id }, 'hook worker could not record a run'),
        recover: () => this.abandonInline(),
      },
      { concurrency: opts.concurrency ?? 8, ready: () => this.store.ready(), name: 'hook worker', logger: opts.logger, writes: storeWrites(this.store) },
    );
  }

  /**
   * An operator's re-send of a failed queued run: the same run (so the same Idempotency-Key), due
   * now, its next attempt numbered on in the same history. Inline runs belonged to a call that has
   * moved on, so they are not re-sent. False when there is no such failed queued run.
   */
  async resend(id: string, reason: string): Promise<boolean> {
    const now = Date.now();
    const { changes: changed } = await this.store.run(
      "UPDATE hook_runs SET status = 'pending', next_at = ?, settled_at = NULL, reason = ?, updated_at = ? WHERE id = ? AND status = 'failed' AND mode = 'queued'",
      [now, reason, now, id],
    );
    if (changed) this.worker.kick();
    return changed === 1;
  }

  /**
   * Queues the hooks this event triggers, in their order, durably before returning. Hooks whose
   * `numbers` do not include the call's DID are not queued at all (CA1). Returns the run ids; an
   * event seen before queues nothing again.
   */
  async enqueue(ev: CallEvent): Promise<string[]> {
    const hooks = hooksFor(this.hooks, ev.kind).filter((h) => this.targets(h, ev.vars.called));
    if (!hooks.length) return [];
    const now = Date.now();
    const vars = JSON.stringify(ev.vars);
    const ids = await this.store.transaction(
      async (tx) => {
        const out: string[] = [];
        const base = ((await this.sql.lastSeq.get(tx, ev.callId))?.seq ?? -1) + 1;
        for (const [i, h] of hooks.entries()) {
          const id = randomUUID();
          const row = { id, callId: ev.callId, event: ev.kind, eventKey: ev.key, hook: h.name, seq: base + i, mode: 'queued', vars, status: 'pending', nextAt: now, leaseUntil: null, claimedBy: null, now };
          if ((await this.sql.insertRun.run(tx, row)).changes === 1) out.push(id);
        }
        return out;
      },
      { immediate: true },
    );
    if (ids.length) {
      this.log?.info({ callId: ev.callId, event: ev.kind, hooks: hooks.map((h) => h.name), queued: ids.length }, 'hooks queued');
      this.worker.kick();
    }
    return ids;
  }

  private targets(hook: Hook, did: string | undefined): boolean {
    return targetsNumber(hook, did, this.defaultCountry);
  }

  /** Variables hooks extracted for this call so far. */
  async callVars(callId: string): Promise<Record<string, string>> {
    return Object.fromEntries((await this.sql.callVars.all(this.store, callId)).map((r) => [r.name, r.value]));
  }

  start(): void {
    this.worker.start();
  }

  /** Reads the store again for due rows (another instance on it has gone). */
  wake(): void {
    this.worker.kick();
  }

  /** Inline runs whose process died: their caller went with it, nobody will finish them. */
  private async abandonInline(): Promise<void> {
    const now = Date.now();
    const abandoned = await this.store.transaction(
      async (tx) => {
        await this.sql.abandonInlineAttempts.run(tx, now, now);
        return (await this.sql.abandonInline.run(tx, now, now, now)).changes;
      },
      { immediate: true },
    );
    if (abandoned) this.log?.warn({ runs: abandoned }, 'inline hooks cut off by a restart marked failed');
  }

  /** Stops claiming; runs in flight get `graceMs`, then are cancelled and go back to pending. */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    return this.worker.stop(opts);
  }

  get busy(): number {
    return this.worker.busy;
  }

  /**
   * One run per transaction, pulled by the loop one at a time: each is started before the next is
   * claimed, so a run that settles at once (skipped by its condition) frees the next run of its
   * call's chain for the same pass.
   */
  private claimRuns(busy: ReadonlySet<string>): AsyncIterable<RunRow> {
    return this.runs.claimEach(busy, {
      now: Date.now,
      leaseMs: (row) => this.leaseMs(this.byName.get(row.hook)),
      claimed: (row, interrupted) => ({ ...row, interrupted }),
      gaveUp: (row, reason) =>
        this.emit('settled', { id: row.id, callId: row.call_id, event: row.event, hook: row.hook, status: 'failed', attempts: row.attempts, reason, extracted: {} }),
    });
  }

  private leaseMs(hook: Hook | undefined): number {
    return (hook?.request.timeout ?? 30_000) + this.leaseMarginMs;
  }

  private async deliver(row: RunRow, stopping: AbortSignal): Promise<void> {
    const hook = this.byName.get(row.hook);
    if (!hook) {
      await this.settleWithout(row, 'failed', `hook "${row.hook}" is no longer in the config`);
      return;
    }
    const vars = { ...(await this.callVars(row.call_id)), ...(JSON.parse(row.vars) as Record<string, string>) };
    if (row.attempts === 0 && (await this.skippedByCondition(row, hook, vars))) return;

    const { signal, stopped } = attemptSignal(hook.request.timeout + Math.min(250, this.leaseMarginMs / 4), stopping);
    const report = await this.attemptOnce(row, hook, vars, signal);
    if (!report) return;
    const cancelled = stopped() && report.outcome === 'retry';
    await this.record(row, hook, row.attempts + 1, report, cancelled);
  }

  /** Records the run as skipped when its condition does not hold (CA2); the reason, if so. */
  private async skippedByCondition(row: RunRow, hook: Hook, vars: Record<string, string>): Promise<string | undefined> {
    const cond = conditionHolds(hook, vars);
    if (cond.ok) return undefined;
    const reason = `condition not met: "${cond.value}" does not match ${String(hook.when!.match)}`;
    await this.settleWithout(row, 'skipped', reason);
    return reason;
  }

  /** Writes the attempt row, then sends; undefined when the run was taken from us meanwhile. */
  private async attemptOnce(row: RunRow, hook: Hook, vars: Record<string, string>, signal: AbortSignal): Promise<AttemptReport | undefined> {
    const attempt = row.attempts + 1;
    let prepared: ReturnType<typeof prepare>;
    try {
      prepared = prepare(hook, vars, row.id, this.secrets);
    } catch (e) {
      await this.settleWithout(row, 'failed', `cannot build the request: ${(e as Error).message}`);
      return undefined;
    }
    const now = Date.now();
    const started = await this.store.transaction(
      async (tx) => {
        if ((await this.sql.bumpAttempt.run(tx, now, now + this.leaseMs(hook), row.id, this.workerId, row.attempts)).changes !== 1) return false;
        await this.sql.startAttempt.run(tx, row.id, attempt, now, JSON.stringify(prepared.logged), this.workerId);
        return true;
      },
      { immediate: true },
    );
    if (!started) {
      this.log?.warn({ runId: row.id, hook: row.hook }, 'hook run was taken over by another worker');
      return undefined;
    }
    this.log?.debug({ runId: row.id, callId: row.call_id, hook: row.hook, attempt, url: prepared.logged.url }, 'hook attempt');
    return send(hook, prepared.built, prepared.logged, { secrets: this.secrets, signal, dispatcher: this.dispatcher });
  }

  private next(row: RunRow, hook: Hook, attempt: number, report: AttemptReport, cancelled: boolean, now: number): Next {
    if (cancelled) return { status: 'pending', nextAt: now, reason: 'interrupted by shutdown' };
    if (report.outcome === 'ok') {
      const missed = report.notFound.length ? ` (not found: ${report.notFound.join(', ')})` : '';
      return { status: 'ok', nextAt: null, reason: report.reason + missed };
    }
    if (report.outcome === 'retry') {
      const answered = attempt - row.interrupted;
      if (answered <= hook.retry.count) {
        const wait = retryWait(hook.retry, answered, report.retryAfterMs, this.maxRetryAfterMs);
        return { status: 'pending', nextAt: now + wait, reason: report.reason };
      }
      return { status: 'failed', nextAt: null, reason: `${report.reason} (no retries left)` };
    }
    return { status: 'failed', nextAt: null, reason: report.reason };
  }

  private async record(row: RunRow, hook: Hook, attempt: number, report: AttemptReport, cancelled: boolean): Promise<Next> {
    const now = Date.now();
    const next = this.next(row, hook, attempt, report, cancelled, now);
    const settles = next.status !== 'pending';
    this.emit('attempt', { runId: row.id, hook: row.hook, outcome: cancelled ? 'interrupted' : report.outcome });
    const extracted = report.outcome === 'ok' && Object.keys(report.extracted).length ? report.extracted : undefined;
    const changed = await this.store.transaction(
      async (tx): Promise<number> => {
        await this.sql.finishAttempt.run(tx, {
          now,
          outcome: cancelled ? 'interrupted' : report.outcome,
          reason: cancelled ? 'interrupted by shutdown' : report.reason,
          status: report.status ?? null,
          headers: report.responseHeaders ? JSON.stringify(report.responseHeaders) : null,
          body: report.body === undefined ? null : excerpt(report.body),
          truncated: report.truncated || (report.body !== undefined && excerpt(report.body) !== report.body) ? 1 : 0,
          latency: Math.round(report.latencyMs),
          error: report.error ?? null,
          extracted: extracted ? JSON.stringify(extracted) : report.notFound.length ? JSON.stringify({ notFound: report.notFound }) : null,
          id: row.id,
          attempt,
        });
        const { changes: n } = await this.sql.settle.run(tx, {
          status: next.status,
          nextAt: next.nextAt,
          reason: next.reason,
          interrupted: cancelled ? 1 : 0,
          extracted: extracted ? JSON.stringify(extracted) : null,
          now,
          settledAt: settles ? now : null,
          id: row.id,
          worker: this.workerId,
          attempts: attempt,
        });
        if (n === 1 && extracted) for (const [k, v] of Object.entries(extracted)) await this.sql.putVar.run(tx, row.call_id, k, v, row.id, now);
        return n;
      },
      { immediate: true },
    );
    if (changed !== 1) {
      this.log?.warn({ runId: row.id, attempt }, 'hook lease ran out before the attempt finished; another worker owns it now');
      return next;
    }
    const log = {
      runId: row.id,
      callId: row.call_id,
      hook: row.hook,
      event: row.event,
      attempt,
      outcome: cancelled ? 'interrupted' : report.outcome,
      reason: report.reason,
      status: report.status,
      latencyMs: report.latencyMs,
      ...(extracted ? { extracted: Object.keys(extracted) } : {}),
    };
    if (next.status === 'failed') this.log?.warn(log, 'hook failed');
    else if (next.status === 'ok') this.log?.info(log, 'hook ok');
    else this.log?.info({ ...log, retryAt: next.nextAt }, 'hook attempt failed, will retry');
    if (settles) {
      this.emit('settled', {
        id: row.id,
        callId: row.call_id,
        event: row.event,
        hook: row.hook,
        status: next.status as SettledRun['status'],
        attempts: attempt,
        reason: next.reason,
        extracted: extracted ?? {},
      });
    }
    return next;
  }

  /** Settles a run that sent nothing this time (skipped by its condition, or unrunnable). */
  private async settleWithout(row: RunRow, status: 'skipped' | 'failed', reason: string): Promise<void> {
    const now = Date.now();
    const { changes: changed } = await this.sql.settle.run(this.store, {
      status,
      nextAt: null,
      reason,
      interrupted: 0,
      extracted: null,
      now,
      settledAt: now,
      id: row.id,
      worker: this.workerId,
      attempts: row.attempts,
    });
    if (changed !== 1) return;
    const log = { runId: row.id, callId: row.call_id, hook: row.hook, event: row.event, reason };
    if (status === 'skipped') this.log?.info(log, 'hook skipped');
    else this.log?.warn(log, 'hook failed');
    this.emit('settled', { id: row.id, callId: row.call_id, event: row.event, hook: row.hook, status, attempts: row.attempts, reason, extracted: {} });
  }

  /**
   * Runs an `inline` hook for a `hook` step while the caller waits, with the hook's timeout and
   * retries, and logs it like any other run. The extracted variables are returned (for the
   * session) and stored (for later hooks and stages of the call).
   */
  async runInline(name: string, ctx: InlineContext): Promise<InlineResult> {
    const started = Date.now();
    const hook = this.byName.get(name);
    if (!hook) throw new Error(`no hook named "${name}"`);
    const done = (status: InlineResult['status'], reason: string, attempts: number, extracted: Record<string, string> = {}): InlineResult => ({
      status,
      reason,
      attempts,
      extracted,
      durationMs: Date.now() - started,
    });
    if (!this.targets(hook, ctx.vars.called)) return done('skipped', `the call's number ${ctx.vars.called ?? '(none)'} is not in the hook's numbers`, 0);

    const id = randomUUID();
    const budget = (hook.request.timeout + this.leaseMarginMs) * (hook.retry.count + 1) + hook.retry.intervalMs * hook.retry.count;
    await this.sql.insertRun.run(this.store, {
      id,
      callId: ctx.callId,
      event: 'inline',
      eventKey: `${ctx.callId}/inline/${id}`,
      hook: hook.name,
      seq: 0,
      mode: 'inline',
      vars: JSON.stringify(ctx.vars),
      status: 'sending',
      nextAt: null,
      leaseUntil: started + budget,
      claimedBy: this.workerId,
      now: started,
    });
    let row: RunRow = { id, call_id: ctx.callId, event: 'inline', event_key: `${ctx.callId}/inline/${id}`, hook: hook.name, seq: 0, mode: 'inline', vars: '', status: 'sending', attempts: 0, interrupted: 0 };
    const vars = { ...(await this.callVars(ctx.callId)), ...ctx.vars };
    const skipped = await this.skippedByCondition(row, hook, vars);
    if (skipped) return done('skipped', skipped, 0);

    for (;;) {
      const report = await this.attemptOnce(row, hook, vars, AbortSignal.timeout(hook.request.timeout + 250));
      if (!report) return done('failed', 'run taken over', row.attempts);
      const attempt = row.attempts + 1;
      const next = await this.record(row, hook, attempt, report, false);
      row = { ...row, attempts: attempt };
      if (next.status !== 'pending') return done(next.status as InlineResult['status'], next.reason, attempt, report.extracted);
      const waitMs = Math.max(0, (next.nextAt ?? Date.now()) - Date.now());
      const gone = await sleep(waitMs, ctx.signal);
      if (gone) {
        await this.runs.take({ id: row.id, status: 'pending', attempts: row.attempts, interrupted: 0, leaseUntil: Date.now() + 1000, now: Date.now() });
        await this.settleWithout(row, 'failed', `${next.reason}; the call ended before the retry`);
        return done('failed', 'the call ended before the retry', attempt);
      }
      await this.runs.take({ id: row.id, status: 'pending', attempts: row.attempts, interrupted: 0, leaseUntil: Date.now() + this.leaseMs(hook), now: Date.now() });
    }
  }

}

/** Resolves true when the signal fired before the time was up. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
