import { applyMigrations } from '../../store/port.js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../log.js';
import { maskNumber } from '../../log.js';
import { attemptSignal, DurableWorker } from '../../queue/durable-worker.js';
import { LeasedTable, retryWait } from '../../queue/leased-table.js';
import type { Store } from '../../store/port.js';
import { storeWrites } from '../../store/write-health.js';
import { CallMeter } from './client.js';
import type { SalesforceConfig } from './config.js';
import { activityQueue, prepareStatements, salesforceMigrations, type ActivityRow, type Statements } from './store.js';
import type { CallSnapshot, Phase } from './task.js';
import { TaskFlow, type AttemptResult, type Progress, type TaskFlowOptions } from './task-flow.js';

/**
 * Writes each call's Task to Salesforce through a durable queue (the `sf_activities` table).
 *
 * Built like the SMS outbox and the hook runs (src/sms/outbox.ts, src/hooks/worker.ts) and run by
 * the same loop and lease (src/queue/durable-worker.ts, src/queue/leased-table.ts): the call's
 * data is committed before anything is sent; a claimed row holds a lease and its attempt is
 * recorded before the first request; a worker that dies leaves the lease to run out and whoever
 * takes the row back writes the lost attempt off as interrupted; a retry wait is `next_at` in the
 * row, so a restart resumes it. Its rows, SQL, retry policy, attempt records and events stay here.
 * It is a sibling rather than a reuse of either queue because one call is several dependent
 * requests whose results must survive between them: the record match (so a retry does not search
 * again), the Task id (so the end of the call updates the Task made at its start, and a retry
 * never creates a second one), and the count of API calls spent.
 *
 * Failures: expired sessions are renewed inside the attempt; REQUEST_LIMIT_EXCEEDED, 5xx,
 * timeouts and refused credentials are retried with a capping backoff for `retry.for` (24 h by
 * default, the span of Salesforce's rolling allowance); a refusal of the Task itself (an unknown
 * field, a value too long) fails the row, which /health reports.
 */

export interface WorkerOptions extends Omit<TaskFlowOptions, 'now'> {
  store: Store;
  workerId?: string;
  /** Added to the attempt's deadline to form the lease. Default 2 s. */
  leaseMarginMs?: number;
  /** A row cut off this many times fails instead of looping. Default 5. */
  maxInterruptions?: number;
  now?: () => number;
}

export interface LoggedActivity {
  callId: string;
  taskId: string;
  phase: Phase;
  /** The call's data requests so far, all attempts included. */
  apiCalls: number;
  rule: string;
}

/** How an attempt ended, as the row records it. */
interface Settlement extends AttemptResult {
  row: ActivityRow;
  call: CallSnapshot;
  /** Every request the attempt sent; those not yet counted in the row are added. */
  meter: CallMeter;
  /** Our own shutdown cut it off: back to pending without counting a failure. */
  cancelled: boolean;
}

/**
 * Requests one attempt can send, token renewal aside: a search, the owner's User query, the
 * lookup of a create whose answer was lost, a write, and that write again without a refused owner.
 */
const REQUESTS_PER_ATTEMPT = 6;

export class SalesforceWorker extends EventEmitter<{ logged: [LoggedActivity]; failed: [{ callId: string; reason: string }] }> {
  readonly workerId: string;
  private readonly sql: Statements;
  private readonly flow: TaskFlow;
  private readonly log?: Logger;
  private readonly now: () => number;
  private readonly leaseMarginMs: number;
  private readonly activities: LeasedTable<ActivityRow>;
  private readonly worker: DurableWorker<ActivityRow>;

  constructor(private readonly opts: WorkerOptions) {
    super();
    this.workerId = opts.workerId ?? `salesforce-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.leaseMarginMs = opts.leaseMarginMs ?? 2_000;
    this.flow = new TaskFlow({ client: opts.client, config: opts.config, defaultCountry: opts.defaultCountry, logger: opts.logger, logLevel: opts.logLevel, now: this.now });
    applyMigrations(opts.store, salesforceMigrations);
    this.sql = prepareStatements();
    this.activities = new LeasedTable(opts.store, activityQueue, { worker: this.workerId, maxInterruptions: opts.maxInterruptions ?? 5 });
    this.worker = new DurableWorker<ActivityRow>(
      {
        id: (row) => row.call_id,
        claim: (_room, busy) => this.claimRows(busy),
        nextWakeAt: (busy) => this.activities.nextWakeAt(busy),
        deliver: (row, stopping) => this.run(row, stopping),
        deliverFailed: (row, e) => this.log?.error({ err: e, callId: row.call_id }, 'salesforce worker could not record an attempt'),
      },
      { concurrency: opts.config.concurrency, ready: () => opts.store.ready(), name: 'salesforce worker', logger: opts.logger, now: this.now, writes: storeWrites(opts.store) },
    );
  }

  private get store() {
    return this.opts.store;
  }

  private get cfg(): SalesforceConfig {
    return this.opts.config;
  }

  /** The call started (or was answered): its Task is created after `delayMs`. No-op if queued before. */
  async enqueueStart(call: CallSnapshot, delayMs = 0): Promise<void> {
    const now = this.now();
    if ((await this.sql.insertStart.run(this.store, { id: call.callId, call: JSON.stringify(call), nextAt: now + delayMs, now })).changes) this.worker.kick();
  }

  /**
   * The call ended: create its Task, or update the one created at the start. `sawStart` false
   * means this process did not see the call begin (it was restarted meanwhile): what the stored
   * start knew (dial start, answer, merge fields) is kept rather than replaced by guesses.
   */
  async enqueueEnd(call: CallSnapshot, sawStart = true): Promise<void> {
    const now = this.now();
    let merged = call;
    if (!sawStart) {
      const stored = await this.sql.get.get(this.store, call.callId);
      if (stored?.phase === 'start') {
        const before = JSON.parse(stored.call) as CallSnapshot;
        merged = {
          ...call,
          direction: before.direction,
          number: before.number || call.number,
          dialStart: before.dialStart,
          ...(before.callStart !== undefined || call.callStart !== undefined ? { callStart: before.callStart ?? call.callStart } : {}),
          answered: before.answered || call.answered,
          vars: { ...before.vars, ...call.vars },
        };
      }
    }
    if ((await this.sql.upsertEnd.run(this.store, { id: call.callId, call: JSON.stringify(merged), now })).changes) this.worker.kick();
  }

  /**
   * A memo after the call: `unknown` when no activity of that call is stored, `unchanged` when it
   * holds this memo already (no request is sent), else `changed` and the Task is written again.
   */
  async memo(callId: string, memo: string): Promise<'unknown' | 'unchanged' | 'changed'> {
    const result = await this.store.transaction(
      async (tx) => {
        const row = await this.sql.getMemo.get(tx, callId);
        if (!row) return 'unknown' as const;
        if (row.memo === memo) return 'unchanged' as const;
        const call = JSON.parse(row.call) as CallSnapshot;
        call.vars = { ...call.vars, memo };
        await this.sql.setMemo.run(tx, { id: callId, call: JSON.stringify(call), memo, now: this.now() });
        return 'changed' as const;
      },
      { immediate: true },
    );
    if (result === 'changed') this.worker.kick();
    return result;
  }

  /** Newer call data (a click-to-call id) for a start not yet looked up. */
  async refresh(call: CallSnapshot): Promise<void> {
    await this.sql.refreshCall.run(this.store, JSON.stringify(call), this.now(), call.callId);
  }

  start(): void {
    this.worker.start();
  }

  /** Reads the store again for due rows (another instance on it has gone). */
  wake(): void {
    this.worker.kick();
  }

  /** Stops claiming; attempts in flight get `graceMs`, then are cancelled and go back to pending. */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    return this.worker.stop(opts);
  }

  get busy(): number {
    return this.worker.busy;
  }

  private get attemptMs(): number {
    return this.cfg.timeout * REQUESTS_PER_ATTEMPT;
  }

  /**
   * One row per transaction, pulled by the loop one at a time: each is started before the next is
   * claimed. A row taken back from a dead worker needs nothing undone: whatever its lost attempt
   * sent, the row's flags (task_id, create_unknown) still say what is known.
   */
  private claimRows(busy: ReadonlySet<string>): AsyncIterable<ActivityRow> {
    return this.activities.claimEach(busy, {
      now: this.now,
      leaseMs: () => this.attemptMs + this.leaseMarginMs,
      claimed: async (row, interrupted, now, tx) => {
        const claimed = { ...row, interrupted, attempts: row.attempts + 1, status: 'sending' as const };
        await this.sql.startAttempt.run(tx, row.call_id, claimed.attempts, row.phase, now, this.workerId);
        return claimed;
      },
      gaveUp: (row, reason) => {
        const failed = { callId: row.call_id, reason };
        this.log?.error(failed, 'salesforce activity failed');
        this.emit('failed', failed);
      },
    });
  }

  /** One attempt under the row's lease; the Task flow records its progress through the guarded writes. */
  private async run(row: ActivityRow, stopping: AbortSignal): Promise<void> {
    const meter = new CallMeter();
    const { signal, stopped } = attemptSignal(this.attemptMs, stopping);
    const call = JSON.parse(row.call) as CallSnapshot;
    const result = await this.flow.attempt(row, call, this.progress(row, meter), meter, signal);
    await this.settle({ ...result, row, call, meter, cancelled: stopped() });
  }

  private progress(row: ActivityRow, meter: CallMeter): Progress {
    const key = this.key(row);
    return {
      matched: (m) => this.write(() => this.sql.saveMatch.run(this.store, { ...key, recordId: m.recordId ?? null, recordType: m.recordType ?? null, rule: m.rule, calls: meter.take(), now: this.now() })),
      creating: () => this.write(() => this.sql.markCreating.run(this.store, { ...key, calls: meter.take(), now: this.now() })),
      task: (taskId) => this.write(() => this.sql.saveTask.run(this.store, { ...key, taskId, calls: meter.take(), now: this.now() })),
    };
  }

  /** What every write of an attempt is guarded by: the row is still ours, in this attempt. */
  private key(row: ActivityRow): { id: string; worker: string; attempt: number } {
    return { id: row.call_id, worker: this.workerId, attempt: row.attempts };
  }

  /** Runs a guarded write; false when the row is no longer this attempt's (its lease ran out). */
  private async write(fn: () => Promise<{ changes: number }>): Promise<boolean> {
    if ((await fn()).changes === 1) return true;
    this.log?.warn({ worker: this.workerId }, 'salesforce lease ran out during an attempt; another worker owns the row now');
    return false;
  }

  private async settle({ row, call, outcome, meter, taskId, createUnknown, cancelled }: Settlement): Promise<void> {
    if (outcome.kind === 'lost') return;
    const key = this.key(row);
    const now = this.now();
    const requests = JSON.stringify(meter.requests);
    const calls = meter.take();
    let attemptOutcome: string;
    let reason: string;
    let changed: number;
    let logged: LoggedActivity | undefined;
    let failed: string | undefined;
    await this.store.transaction(
      async (tx) => {
        if (outcome.kind === 'ok') {
          attemptOutcome = 'ok';
          reason = outcome.reason;
          changed = (await this.sql.settleOk.run(tx, { ...key, synced: outcome.synced, memo: row.memo, calls, reason, now })).changes;
          const after = await this.sql.get.get(tx, row.call_id);
          if (changed && after && taskId) logged = { callId: row.call_id, taskId, phase: outcome.synced, apiCalls: after.api_calls, rule: after.match_rule ?? '' };
        } else {
          const e = outcome.error;
          reason = e.reason;
          if (cancelled) {
            attemptOutcome = 'interrupted';
            reason = 'interrupted by shutdown';
            changed = (await this.sql.settleRetry.run(tx, { ...key, nextAt: now, calls, failed: 0, unknown: createUnknown ? 1 : 0, reason, now })).changes;
          } else if (e.outcome === 'retry') {
            const firstFailed = row.first_failed_at ?? now;
            if (now - firstFailed >= this.cfg.retry.for) {
              attemptOutcome = 'retry';
              failed = `${e.reason} (retried for ${Math.round((now - firstFailed) / 60_000)} min; giving up)`;
              changed = (await this.sql.settleFailed.run(tx, { ...key, calls, unknown: createUnknown ? 1 : 0, reason: failed, now })).changes;
            } else {
              attemptOutcome = 'retry';
              const { interval, maxInterval } = this.cfg.retry;
              const wait = retryWait({ intervalMs: interval, backoff: 2, maxIntervalMs: maxInterval }, row.failures + 1, e.detail.retryAfterMs, maxInterval);
              changed = (await this.sql.settleRetry.run(tx, { ...key, nextAt: now + wait, calls, failed: 1, unknown: createUnknown ? 1 : 0, reason, now })).changes;
              this.log?.warn({ callId: row.call_id, attempt: key.attempt, reason, retryInMs: wait, mayHaveCreated: createUnknown }, 'salesforce attempt failed, will retry');
            }
          } else {
            attemptOutcome = e.outcome;
            failed = e.reason;
            changed = (await this.sql.settleFailed.run(tx, { ...key, calls, unknown: createUnknown ? 1 : 0, reason, now })).changes;
          }
        }
        await this.sql.finishAttempt.run(tx, { id: row.call_id, attempt: key.attempt, now, outcome: attemptOutcome, reason, requests });
        if (changed && meter.refused) await this.sql.addRefused.run(tx, meter.refused, row.call_id);
      },
      { immediate: true },
    );
    if (!changed!) {
      this.log?.warn({ callId: row.call_id, attempt: key.attempt }, 'salesforce lease ran out before the attempt finished; another worker owns the row now');
      return;
    }
    if (failed) {
      this.log?.error({ callId: row.call_id, attempt: key.attempt, reason: failed, number: maskNumber(call.number, this.opts.logLevel ?? 'info') }, 'salesforce activity failed');
      this.emit('failed', { callId: row.call_id, reason: failed });
    }
    if (logged) {
      if (logged.phase === 'end') this.log?.info({ ...logged }, 'salesforce activity logged');
      this.emit('logged', logged);
    }
  }
}
