import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { excerpt } from '../http/excerpt.js';
import type { Logger } from '../log.js';
import { maskNumber } from '../log.js';
import { attemptSignal, DurableWorker } from '../queue/durable-worker.js';
import { LEASE_EXPIRED, LeasedTable, retryWait } from '../queue/leased-table.js';
import { applyMigrations, rowsParam } from '../store/port.js';
import type { Store } from '../store/port.js';
import { storeWrites } from '../store/write-health.js';
import { checkLimits, type SmsLimits } from './limits.js';
import { provablyNotSent, type SendResult, type SmsProvider } from './provider.js';
import { prepareStatements, smsMigrations, smsQueue, type AttemptOutcome, type DueRow, type SmsStatus, type Statements } from './store.js';
import type { NewSms } from '../calls/services.js';

// The app, the CLI and the bench import these from the outbox, the SMS queue's entry point.
export { smsMigrations, type AttemptOutcome, type SmsStatus } from './store.js';

/**
 * The durable SMS outbox (S11). A message is "accepted" once its row is committed; from then on
 * the worker delivers it even across crashes, and never sends it twice while the process lives.
 *
 * Claiming a row sets `sending` with a lease (the provider's timeout plus a margin) and records
 * the attempt BEFORE the request goes out. A worker that crashes leaves the row `sending`; once the
 * lease has run out any worker (the restarted one included) takes it back, marks the lost attempt
 * `interrupted` and repeats the request with the same message id. Waiting for the lease instead of
 * re-queueing every `sending` row at start keeps two workers on one database from sending a message
 * the other is still sending.
 *
 * Two windows remain in which the provider can get one message twice: an answer lost to a
 * timeout (retried, as the seed does, because giving up would lose every message whose request
 * never arrived) and a crash between the provider's answer and our commit. Every attempt carries the
 * message id as `Idempotency-Key`, which closes both at a provider that keeps keys (the seed 000
 * provider keeps none); a provider set to `delivery: at-most-once` instead settles such a message as
 * `unknown` and never repeats it (src/sms/provider.ts).
 *
 * The loop that claims rows, sleeps until the next is due and stops with a grace period is the
 * shared durable worker (src/queue/durable-worker.ts), the lease and the claim are the shared
 * leased table (src/queue/leased-table.ts); the tables and their SQL are src/sms/store.ts; the
 * retry policy, the attempt records and the events are this module's.
 */

/** What a step hands over (calls/services.ts declares it, so the routing sms destination can too). */
export type OutboxMessage = NewSms;

export interface AcceptOptions {
  /** At most one accept per (callId, key) ever succeeds (S6); later ones write nothing. */
  once?: { callId: string; key: string };
}

export interface AcceptResult {
  duplicate: boolean;
  /** Every row written, the blocked ones included. */
  ids: string[];
  /** Messages the limits refused: recorded with status `blocked`, never sent. */
  blocked: Array<{ id: string; to: string; reason: string }>;
}

export interface SkippedEntry {
  callId: string;
  description: string;
  provider: string;
  to?: string;
  reason: string;
  /** The text it would have had, when known. */
  text?: string;
  sender?: string;
}

export interface SettledMessage {
  id: string;
  callId: string;
  description: string;
  provider: string;
  to: string;
  status: 'sent' | 'failed' | 'unknown';
  attempts: number;
  reason: string;
  providerMessageId?: string;
}

export interface AttemptEvent {
  id: string;
  attempt: number;
  outcome: Exclude<AttemptOutcome, 'sending'>;
  reason: string;
  status?: number;
  latencyMs: number;
}

export interface OutboxEvents {
  /** A message reached `sent` or `failed`. */
  settled: [SettledMessage];
  /** An attempt finished (or was found interrupted). */
  attempt: [AttemptEvent];
}

export interface OutboxOptions {
  store: Store;
  providers: ReadonlyMap<string, SmsProvider> | Readonly<Record<string, SmsProvider>>;
  /** Sends in flight at once from this outbox. Default 4. */
  concurrency?: number;
  /** Attempt deadline for a provider that does not state its own timeout. Default 30 s. */
  attemptTimeoutMs?: number;
  /** Added to the attempt deadline to form the lease. Default 2 s. */
  leaseMarginMs?: number;
  /** Upper bound on a provider's Retry-After. Default 10 min. */
  maxRetryAfterMs?: number;
  /** A message whose attempts were cut off this many times fails instead of looping. Default 5. */
  maxInterruptions?: number;
  /** Names this worker in the attempts table. */
  workerId?: string;
  /** Fraud and cost limits (S11), checked inside the accept transaction. */
  limits?: SmsLimits;
  logger?: Logger;
}

interface Claimed extends DueRow {
  attempt: number;
}

/** What writing one attempt's result decided. */
interface Written {
  next: { status: SmsStatus; nextAt: number | null; reason: string };
  outcome: Exclude<AttemptOutcome, 'sending'>;
  settles: boolean;
  /** False when another worker took the row over after our lease ran out. */
  owned: boolean;
}

interface QueuedRecord {
  row: Claimed;
  result: SendResult;
  cancelled: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** One lock for every accept with limits on a PostgreSQL store, held to the end of its transaction. */
const ACCEPT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('call-actions/sms-accept'))";

export class Outbox extends EventEmitter<OutboxEvents> {
  readonly workerId: string;
  private readonly store: Store;
  private readonly providers: ReadonlyMap<string, SmsProvider>;
  private readonly attemptTimeoutMs: number;
  private readonly leaseMarginMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly log?: Logger;
  private readonly limits?: SmsLimits;
  private readonly sql: Statements;
  private readonly messages: LeasedTable<DueRow>;
  private readonly worker: DurableWorker<Claimed>;
  private readonly toRecord: QueuedRecord[] = [];

  constructor(opts: OutboxOptions) {
    super();
    this.store = opts.store;
    this.providers = opts.providers instanceof Map ? opts.providers : new Map(Object.entries(opts.providers));
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 30_000;
    this.leaseMarginMs = opts.leaseMarginMs ?? 2_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 600_000;
    this.workerId = opts.workerId ?? `outbox-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = opts.logger;
    this.limits = opts.limits;
    applyMigrations(this.store, smsMigrations);
    this.sql = prepareStatements();
    this.messages = new LeasedTable(this.store, smsQueue, { worker: this.workerId, maxInterruptions: opts.maxInterruptions ?? 5 });
    this.worker = new DurableWorker<Claimed>(
      {
        id: (row) => row.id,
        claim: (room, busy) => this.claimBatch(room, busy),
        // Sleeps until the next pending row is due or the next foreign lease runs out.
        nextWakeAt: (busy) => this.messages.nextWakeAt(busy),
        deliver: (row, stopping, release) => this.deliver(row, stopping, release),
        deliverFailed: (row, e) => this.log?.error({ err: e, smsId: row.id }, 'SMS outbox could not record an attempt'),
      },
      { concurrency: opts.concurrency ?? 4, ready: () => this.store.ready(), name: 'SMS outbox', logger: opts.logger, writes: storeWrites(this.store) },
    );
  }

  /**
   * Commits every message (or none) before returning: that commit is the moment they are
   * accepted. Unknown providers are a programming error and throw before anything is written.
   */
  async accept(messages: readonly OutboxMessage[], opts: AcceptOptions = {}): Promise<AcceptResult> {
    for (const m of messages) {
      if (!this.providers.has(m.provider)) throw new Error(`unknown SMS provider "${m.provider}"`);
      if (!m.to) throw new Error('an SMS needs a recipient');
    }
    const now = Date.now();
    const writes = storeWrites(this.store);
    let accepted: AcceptResult;
    try {
      accepted = await this.store.transaction(
        async (tx): Promise<AcceptResult> => {
          // SQLite's IMMEDIATE admits one accept at a time; PostgreSQL would let two count the
          // same rows side by side and both slip under a limit, so there accepts with limits
          // take one lock for the rest of their transaction.
          if (this.limits && tx.kind === 'postgres') await tx.query(ACCEPT_LOCK);
          if (opts.once && (await this.sql.insertOnce.run(tx, opts.once.callId, opts.once.key, now)).changes === 0) {
            return { duplicate: true, ids: [], blocked: [] };
          }
          const ids: string[] = [];
          const blocked: AcceptResult['blocked'] = [];
          for (const m of messages) {
            const id = randomUUID();
            // Counted inside this transaction, so two calls (or two processes) accepting at once
            // cannot both slip under a limit, and rows of this same accept count too.
            const refusal = this.limits ? await checkLimits(tx, this.limits, m, now) : undefined;
            const row = {
              id,
              callId: m.callId,
              description: m.description,
              provider: m.provider,
              to: m.to,
              text: m.text,
              sender: m.sender ?? null,
              notBefore: m.notBefore ?? now,
              note: m.note ?? null,
              now,
            };
            if (refusal) {
              await this.sql.insertSkipped.run(tx, { ...row, status: 'blocked', reason: refusal });
              blocked.push({ id, to: m.to, reason: refusal });
            } else {
              await this.sql.insert.run(tx, row);
            }
            ids.push(id);
          }
          return { duplicate: false, ids, blocked };
        },
        { immediate: true },
      );
    } catch (e) {
      // a full disk or read-only store: nothing was accepted (the step reports it); /health shows why
      writes.failed(e);
      throw e;
    }
    writes.succeeded();
    return this.afterAccept(accepted, messages);
  }

  private afterAccept(result: AcceptResult, messages: readonly OutboxMessage[]): AcceptResult {
    if (result.ids.length > result.blocked.length) this.worker.kick();
    for (const b of result.blocked) {
      this.log?.warn({ smsId: b.id, callId: messages[0]?.callId, to: this.mask(b.to), reason: b.reason }, 'SMS blocked by a limit');
    }
    return result;
  }

  /** True once an accept with this (callId, key) has succeeded; lets a step skip costly work. */
  async hasOnce(callId: string, key: string): Promise<boolean> {
    return (await this.sql.hasOnce.get(this.store, callId, key)) !== undefined;
  }

  /** A history row for an SMS the step decided not to send (withheld caller ID, …). */
  async recordSkipped(entry: SkippedEntry): Promise<string> {
    const id = randomUUID();
    const now = Date.now();
    await this.sql.insertSkipped.run(this.store, {
      id,
      callId: entry.callId,
      description: entry.description,
      provider: entry.provider,
      to: entry.to ?? null,
      text: entry.text ?? '',
      sender: entry.sender ?? null,
      status: 'skipped',
      notBefore: now,
      note: null,
      now,
      reason: entry.reason,
    });
    return id;
  }

  start(): void {
    this.worker.start();
  }

  /** Reads the store again for due rows (another instance on it has gone). */
  wake(): void {
    this.worker.kick();
  }

  /**
   * An operator's re-send of a failed message, or of an at-most-once one whose outcome is unknown
   * (the operator takes the risk of a repeat): due now, with the same id (what a provider that
   * takes an idempotency key sees) and its next attempt numbered on in the same history. False
   * when the message does not exist or is neither failed nor unknown.
   */
  async resend(id: string, reason: string): Promise<boolean> {
    const now = Date.now();
    const { changes: changed } = await this.store.run(
      "UPDATE sms_messages SET status = 'pending', next_at = ?, settled_at = NULL, reason = ?, updated_at = ? WHERE id = ? AND status IN ('failed', 'unknown')",
      [now, reason, now, id],
    );
    if (changed) this.worker.kick();
    return changed === 1;
  }

  /**
   * Stops claiming, lets sends in flight finish for up to `graceMs`, then cancels the rest; a
   * cancelled attempt is recorded as interrupted and its message goes back to pending.
   */
  stop(opts: { graceMs?: number } = {}): Promise<void> {
    return this.worker.stop(opts);
  }

  /** Messages being sent by this outbox right now. */
  get busy(): number {
    return this.worker.busy;
  }

  /**
   * Claims every free slot in one transaction: one durable commit for the batch instead of one per
   * message, which is most of what an SMS costs here (see bench/outbox.js). Events of rows taken
   * back from a dead worker are emitted once it has committed.
   */
  private claimBatch(room: number, busy: ReadonlySet<string>): Promise<Claimed[]> {
    return this.messages.claimBatch(room, busy, {
      now: Date.now,
      leaseMs: (row) => this.leaseMs(row.provider),
      claimed: async (ready, now, tx) => {
        const claimed = ready.map(({ row, interrupted }) => ({ ...row, interrupted, attempt: row.attempts + 1 }));
        const rows = rowsParam(claimed.map((c) => ({ message_id: c.id, attempt: c.attempt })));
        await this.sql.startAttempts.run(tx, { rows, now, worker: this.workerId });
        return claimed;
      },
      lost: (row) => this.emit('attempt', { id: row.id, attempt: row.attempts, outcome: 'interrupted', reason: LEASE_EXPIRED, latencyMs: 0 }),
      // a worker died mid-request: whether the provider took the message is unknown
      settleLost: (row) => (this.atMostOnce(row.provider) ? { status: 'unknown', reason: `${LEASE_EXPIRED}; at-most-once: not repeated` } : undefined),
      gaveUp: (row, reason, _interrupted, status) => this.emit('settled', settledOf(row, status as SettledMessage['status'], row.attempts, reason)),
    });
  }

  private atMostOnce(provider: string): boolean {
    return this.providers.get(provider)?.delivery === 'at-most-once';
  }

  private leaseMs(provider: string): number {
    return (this.providers.get(provider)?.timeoutMs ?? this.attemptTimeoutMs) + this.leaseMarginMs;
  }

  private async deliver(row: Claimed, stopping: AbortSignal, release: () => void): Promise<void> {
    const provider = this.providers.get(row.provider);
    const deadlineMs = provider?.timeoutMs ?? this.attemptTimeoutMs;
    // A little later than the provider's own timeout, so a provider that keeps its timeout reports
    // it as one ("timeout"), and this only cuts off a provider that does not.
    const { signal, stopped } = attemptSignal(deadlineMs + Math.min(250, this.leaseMarginMs / 4), stopping);
    this.log?.debug(
      { smsId: row.id, callId: row.call_id, provider: row.provider, attempt: row.attempt, to: this.mask(row.recipient) },
      'SMS attempt',
    );

    let result: SendResult;
    if (!provider) {
      result = { outcome: 'unexpected', reason: 'unknown-provider', latencyMs: 0, error: `no provider named "${row.provider}"` };
    } else {
      result = await this.attempt(provider, row, signal, deadlineMs);
    }
    const cancelled = stopped() && result.outcome === 'retry';
    release();
    await this.record(row, result, cancelled);
  }

  private async attempt(provider: SmsProvider, row: Claimed, signal: AbortSignal, deadlineMs: number): Promise<SendResult> {
    const message = { messageId: row.id, to: row.recipient, text: row.text, ...(row.sender ? { sender: row.sender } : {}) };
    // A provider that ignores its signal must still not hold the row past its lease.
    let guard: NodeJS.Timeout | undefined;
    const late = new Promise<SendResult>((resolve) => {
      guard = setTimeout(
        () => resolve({ outcome: 'retry', reason: 'timeout', latencyMs: deadlineMs, error: 'provider did not return in time' }),
        deadlineMs + this.leaseMarginMs / 2,
      );
    });
    try {
      return await Promise.race([provider.send(message, signal), late]);
    } catch (e) {
      return { outcome: 'unexpected', reason: 'exception', latencyMs: 0, error: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(guard);
    }
  }

  /**
   * Queues the result; every result that arrives in the same turn of the event loop is written in
   * one transaction (a group commit). Resolves once this one is durable.
   *
   * Not src/store/group-commit.ts, whose contract suits logs: rows wait up to an interval, a crash
   * may lose them, and a failed write is reported rather than returned. A result here must be on
   * disk before it is announced and before its job leaves the worker (stop() waits for that), and a
   * write that fails must reject, so that the lease brings the message back.
   */
  private record(row: Claimed, result: SendResult, cancelled: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.toRecord.push({ row, result, cancelled, resolve, reject });
      if (this.toRecord.length === 1) setImmediate(() => void this.flushRecords());
    });
  }

  private async flushRecords(): Promise<void> {
    const batch = this.toRecord.splice(0);
    if (batch.length === 0) return;
    const now = Date.now();
    const decided = batch.map((b) => this.decide(b.row, b.result, b.cancelled, now));
    // The attempt row keeps the real answer even if another worker already wrote the attempt off
    // as interrupted after our lease ran out.
    const attempts = batch.map(({ row, result, cancelled }, i) => ({
      message_id: row.id,
      attempt: row.attempt,
      outcome: decided[i]!.outcome,
      reason: cancelled ? 'interrupted by shutdown' : result.reason,
      http_status: result.status ?? null,
      body: result.body === undefined ? null : excerpt(result.body),
      latency_ms: Math.round(result.latencyMs),
      error: result.error ?? null,
    }));
    const settles = batch.map(({ row, result, cancelled }, i) => {
      const d = decided[i]!;
      return {
        row_key: row.id,
        attempt: row.attempt,
        status: d.next.status,
        next_at: d.next.nextAt,
        reason: d.next.reason,
        cancelled: cancelled ? 1 : 0,
        provider_message_id: result.providerMessageId ?? null,
        settled_at: d.settles ? now : null,
      };
    });
    const params = { attempts: rowsParam(attempts), rows: rowsParam(settles), now, worker: this.workerId };
    let owned: Set<string>;
    try {
      const mine =
        this.store.kind === 'postgres'
          ? await this.sql.recordPostgres.all(this.store, params)
          : await this.store.transaction(
              async (tx) => {
                await this.sql.finishAttempts.run(tx, params);
                return this.sql.settle.all(tx, params);
              },
              { immediate: true },
            );
      owned = new Set(mine.map((m) => m.id));
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => {
      this.announce(b.row, b.result, { ...decided[i]!, owned: owned.has(b.row.id) });
      b.resolve();
    });
  }

  /** What an attempt's result means for its message: the next status, and the attempt's outcome. */
  private decide(row: Claimed, result: SendResult, cancelled: boolean, now: number): Omit<Written, 'owned'> {
    const provider = this.providers.get(row.provider);
    const outcome: AttemptEvent['outcome'] = cancelled ? 'interrupted' : result.outcome;
    let next: Written['next'];
    const unknown = this.atMostOnce(row.provider) && (cancelled || (result.outcome === 'retry' && !provablyNotSent(result)));
    if (unknown) {
      next = { status: 'unknown', nextAt: null, reason: `${cancelled ? 'interrupted by shutdown' : result.reason}; at-most-once: not repeated` };
    } else if (cancelled) {
      next = { status: 'pending', nextAt: now, reason: 'interrupted by shutdown' };
    } else if (result.outcome === 'ok') {
      next = { status: 'sent', nextAt: null, reason: result.reason };
    } else if (result.outcome === 'retry') {
      const answered = row.attempt - row.interrupted;
      const policy = provider?.retry ?? { count: 0, intervalMs: 0 };
      if (answered <= policy.count) {
        const wait = retryWait(policy, answered, result.retryAfterMs, this.maxRetryAfterMs);
        next = { status: 'pending', nextAt: now + wait, reason: result.reason };
      } else {
        next = { status: 'failed', nextAt: null, reason: `${result.reason} (no retries left)` };
      }
    } else {
      next = { status: 'failed', nextAt: null, reason: result.reason };
    }
    const settles = next.status === 'sent' || next.status === 'failed' || next.status === 'unknown';
    return { next, outcome, settles };
  }

  private announce(row: Claimed, result: SendResult, w: Written): void {
    this.emit('attempt', {
      id: row.id,
      attempt: row.attempt,
      outcome: w.outcome,
      reason: result.reason,
      ...(result.status !== undefined ? { status: result.status } : {}),
      latencyMs: result.latencyMs,
    });
    if (!w.owned) {
      this.log?.warn({ smsId: row.id, attempt: row.attempt }, 'SMS lease ran out before the attempt finished; another worker owns it now');
      return;
    }
    const log = { smsId: row.id, callId: row.call_id, attempt: row.attempt, outcome: w.outcome, reason: result.reason, status: result.status };
    if (w.next.status === 'failed') this.log?.warn(log, 'SMS failed');
    else if (w.next.status === 'unknown') this.log?.warn(log, 'SMS outcome unknown; at-most-once, so not repeated');
    else if (w.next.status === 'sent') this.log?.info(log, 'SMS sent');
    else this.log?.info({ ...log, retryAt: w.next.nextAt }, 'SMS attempt failed, will retry');
    if (w.settles) {
      this.emit('settled', settledOf(row, w.next.status as SettledMessage['status'], row.attempt, w.next.reason, result.providerMessageId));
    }
  }

  private mask(number: string): string | undefined {
    return maskNumber(number, this.log?.level ?? 'info');
  }
}

function settledOf(
  row: DueRow,
  status: SettledMessage['status'],
  attempts: number,
  reason: string,
  providerMessageId?: string,
): SettledMessage {
  const s: SettledMessage = {
    id: row.id,
    callId: row.call_id,
    description: row.description,
    provider: row.provider,
    to: row.recipient,
    status,
    attempts,
    reason,
  };
  if (providerMessageId) s.providerMessageId = providerMessageId;
  return s;
}

export function createOutbox(opts: OutboxOptions): Outbox {
  return new Outbox(opts);
}
