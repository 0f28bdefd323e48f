import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { excerpt } from '../http/excerpt.js';
import type { Logger } from '../log.js';
import { maskNumber } from '../log.js';
import { attemptSignal, DurableWorker } from '../queue/durable-worker.js';
import type { Migration, SqliteDatabase, Store } from '../store/sqlite.js';
import { checkLimits, limitMigrations, type SmsLimits } from './limits.js';
import type { RetryPolicy, SendResult, SmsProvider } from './provider.js';

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
 * never arrived) and a crash between the provider's answer and our commit. A provider that takes an idempotency key closes both with
 * `{messageId}`; the seed 000 provider has none.
 *
 * The loop that claims rows, sleeps until the next is due and stops with a grace period is the
 * shared durable worker (src/queue/durable-worker.ts); the rows, their SQL, the retry policy, the
 * attempt records and the events are this module's.
 */

export type SmsStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'skipped' | 'blocked';
export type AttemptOutcome = 'sending' | 'ok' | 'retry' | 'final' | 'unexpected' | 'interrupted';

export interface OutboxMessage {
  callId: string;
  /** The SMS step's description (S1), by which history is filtered. */
  description: string;
  provider: string;
  to: string;
  text: string;
  sender?: string;
  /** Epoch ms before which it is not sent (S3 delay). */
  notBefore?: number;
  /** Kept in the history beside the message, e.g. why a fallback text was used. */
  note?: string;
}

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
  status: 'sent' | 'failed';
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

export const smsMigrations: readonly Migration[] = [
  {
    id: 'sms/001-outbox',
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
        attempts INTEGER NOT NULL DEFAULT 0,
        interrupted INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL,
        next_at INTEGER,
        lease_until INTEGER,
        claimed_by TEXT,
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
        attempts INTEGER NOT NULL DEFAULT 0,
        interrupted INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL,
        next_at INTEGER,
        lease_until INTEGER,
        claimed_by TEXT,
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
];

interface DueRow {
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

interface Claimed extends DueRow {
  attempt: number;
}

type ClaimStep = { kind: 'claimed'; row: Claimed } | { kind: 'gave-up' } | { kind: 'none' };

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

/** Every statement the outbox runs, prepared once per store. */
function prepare(db: SqliteDatabase) {
  return {
    hasOnce: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM sms_once WHERE call_id = ? AND key = ?'),
    insertOnce: db.prepare<[string, string, number]>(
      'INSERT OR IGNORE INTO sms_once (call_id, key, created_at) VALUES (?, ?, ?)',
    ),
    insert: db.prepare<[Record<string, string | number | null>]>(
      `INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, sender, status,
         not_before, next_at, created_at, updated_at, note)
       VALUES (@id, @callId, @description, @provider, @to, @text, @sender, 'pending',
         @notBefore, @notBefore, @now, @now, @note)`,
    ),
    insertSkipped: db.prepare<[Record<string, string | number | null>]>(
      `INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, sender, status,
         not_before, created_at, updated_at, settled_at, reason, note)
       VALUES (@id, @callId, @description, @provider, @to, @text, @sender, @status, @notBefore, @now, @now, @now,
         @reason, @note)`,
    ),
    nextWake: db.prepare<[string], { at: number | null }>(
      `SELECT MIN(at) AS at FROM (
         SELECT MIN(next_at) AS at FROM sms_messages WHERE status = 'pending'
         UNION ALL
         SELECT MIN(lease_until) FROM sms_messages
          WHERE status = 'sending' AND id NOT IN (SELECT value FROM json_each(?)))`,
    ),
    // Two lookups rather than one OR: each walks the (status, next_at) index in order and stops at
    // the first row, where the OR made SQLite gather and sort every due row on every claim, which
    // costs O(backlog) per message once a burst or a provider outage has built one up.
    duePending: db.prepare<[number, string], DueRow & { next_at: number }>(
      `SELECT id, call_id, description, provider, recipient, text, sender, status, attempts, interrupted, next_at
         FROM sms_messages
        WHERE status = 'pending' AND next_at <= ? AND id NOT IN (SELECT value FROM json_each(?))
        ORDER BY next_at
        LIMIT 1`,
    ),
    dueLost: db.prepare<[number, string], DueRow & { next_at: number }>(
      `SELECT id, call_id, description, provider, recipient, text, sender, status, attempts, interrupted, next_at
         FROM sms_messages
        WHERE status = 'sending' AND lease_until <= ? AND id NOT IN (SELECT value FROM json_each(?))
        ORDER BY next_at
        LIMIT 1`,
    ),
    markLost: db.prepare<[number, string, number]>(
      `UPDATE sms_attempts SET outcome = 'interrupted', reason = 'lease expired', finished_at = ?
        WHERE message_id = ? AND attempt = ? AND outcome = 'sending'`,
    ),
    giveUp: db.prepare<[number, string, number, number, string]>(
      `UPDATE sms_messages SET status = 'failed', interrupted = ?, reason = ?, lease_until = NULL,
         next_at = NULL, updated_at = ?, settled_at = ? WHERE id = ?`,
    ),
    claim: db.prepare<[number, number, string, number, string, string, number]>(
      `UPDATE sms_messages
          SET status = 'sending', attempts = attempts + 1, interrupted = ?, lease_until = ?,
              claimed_by = ?, updated_at = ?
        WHERE id = ? AND status = ? AND attempts = ?`,
    ),
    startAttempt: db.prepare<[string, number, number, string]>(
      `INSERT INTO sms_attempts (message_id, attempt, started_at, outcome, worker)
       VALUES (?, ?, ?, 'sending', ?)`,
    ),
    finishAttempt: db.prepare<
      [number, string, string, number | null, string | null, number, string | null, string, number]
    >(
      `UPDATE sms_attempts SET finished_at = ?, outcome = ?, reason = ?, http_status = ?, body = ?,
         latency_ms = ?, error = ? WHERE message_id = ? AND attempt = ?`,
    ),
    settle: db.prepare<
      [string, number | null, string, number, string | null, number, number | null, string, string, number]
    >(
      `UPDATE sms_messages
          SET status = ?, next_at = ?, reason = ?, interrupted = interrupted + ?,
              provider_message_id = COALESCE(?, provider_message_id), lease_until = NULL,
              updated_at = ?, settled_at = ?
        WHERE id = ? AND status = 'sending' AND claimed_by = ? AND attempts = ?`,
    ),
  };
}

export class Outbox extends EventEmitter<OutboxEvents> {
  readonly workerId: string;
  private readonly store: Store;
  private readonly providers: ReadonlyMap<string, SmsProvider>;
  private readonly attemptTimeoutMs: number;
  private readonly leaseMarginMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly maxInterruptions: number;
  private readonly log?: Logger;
  private readonly limits?: SmsLimits;
  private readonly sql: ReturnType<typeof prepare>;
  private readonly worker: DurableWorker<Claimed>;
  private readonly toRecord: QueuedRecord[] = [];

  constructor(opts: OutboxOptions) {
    super();
    this.store = opts.store;
    this.providers = opts.providers instanceof Map ? opts.providers : new Map(Object.entries(opts.providers));
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 30_000;
    this.leaseMarginMs = opts.leaseMarginMs ?? 2_000;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 600_000;
    this.maxInterruptions = opts.maxInterruptions ?? 5;
    this.workerId = opts.workerId ?? `outbox-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = opts.logger;
    this.limits = opts.limits;
    this.store.migrate(smsMigrations);
    this.sql = prepare(this.store.db);
    this.worker = new DurableWorker<Claimed>(
      {
        id: (row) => row.id,
        claim: (room, busy) => this.claimBatch(room, busy),
        // Sleeps until the next pending row is due or the next foreign lease runs out.
        nextWakeAt: (busy) => this.sql.nextWake.get(JSON.stringify([...busy]))?.at,
        deliver: (row, stopping) => this.deliver(row, stopping),
        deliverFailed: (row, e) => this.log?.error({ err: e, smsId: row.id }, 'SMS outbox could not record an attempt'),
      },
      { concurrency: opts.concurrency ?? 4, ready: () => this.store.ready(), name: 'SMS outbox', logger: opts.logger },
    );
  }

  private get db() {
    return this.store.db;
  }

  /**
   * Commits every message (or none) before returning: that commit is the moment they are
   * accepted. Unknown providers are a programming error and throw before anything is written.
   */
  accept(messages: readonly OutboxMessage[], opts: AcceptOptions = {}): AcceptResult {
    for (const m of messages) {
      if (!this.providers.has(m.provider)) throw new Error(`unknown SMS provider "${m.provider}"`);
      if (!m.to) throw new Error('an SMS needs a recipient');
    }
    const now = Date.now();
    const result = this.db
      .transaction((): AcceptResult => {
        if (opts.once && this.sql.insertOnce.run(opts.once.callId, opts.once.key, now).changes === 0) {
          return { duplicate: true, ids: [], blocked: [] };
        }
        const ids: string[] = [];
        const blocked: AcceptResult['blocked'] = [];
        for (const m of messages) {
          const id = randomUUID();
          // Counted inside this IMMEDIATE transaction, so two calls (or two processes) accepting
          // at once cannot both slip under a limit, and rows of this same accept count too.
          const refusal = this.limits ? checkLimits(this.db, this.limits, m, now) : undefined;
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
            this.sql.insertSkipped.run({ ...row, status: 'blocked', reason: refusal });
            blocked.push({ id, to: m.to, reason: refusal });
          } else {
            this.sql.insert.run(row);
          }
          ids.push(id);
        }
        return { duplicate: false, ids, blocked };
      })
      .immediate();
    if (result.ids.length > result.blocked.length) this.worker.kick();
    for (const b of result.blocked) {
      this.log?.warn({ smsId: b.id, callId: messages[0]?.callId, to: this.mask(b.to), reason: b.reason }, 'SMS blocked by a limit');
    }
    return result;
  }

  /** True once an accept with this (callId, key) has succeeded; lets a step skip costly work. */
  hasOnce(callId: string, key: string): boolean {
    return this.sql.hasOnce.get(callId, key) !== undefined;
  }

  /** A history row for an SMS the step decided not to send (withheld caller ID, …). */
  recordSkipped(entry: SkippedEntry): string {
    const id = randomUUID();
    const now = Date.now();
    this.sql.insertSkipped.run({
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
  private claimBatch(room: number, busy: ReadonlySet<string>): Claimed[] {
    const now = Date.now();
    const claimed: Claimed[] = [];
    const events: Array<() => void> = [];
    this.db
      .transaction(() => {
        while (claimed.length < room) {
          const step = this.claim(now, busy, events);
          if (step.kind === 'none') break;
          if (step.kind === 'claimed') claimed.push(step.row);
        }
      })
      .immediate();
    for (const e of events) e();
    return claimed;
  }

  private leaseMs(provider: string): number {
    return (this.providers.get(provider)?.timeoutMs ?? this.attemptTimeoutMs) + this.leaseMarginMs;
  }

  /**
   * Takes one due row. Runs inside claimBatch's IMMEDIATE transaction: SQLite admits one writer, so
   * between the SELECT and the guarded UPDATE nobody else can take the same row. Events are
   * queued in `events` and emitted by the caller once the transaction has committed.
   */
  private claim(now: number, inFlight: ReadonlySet<string>, events: Array<() => void>): ClaimStep {
    const busy = JSON.stringify([...inFlight]);
    const pending = this.sql.duePending.get(now, busy);
    const lost = this.sql.dueLost.get(now, busy);
    const row = pending && lost ? (lost.next_at <= pending.next_at ? lost : pending) : (pending ?? lost);
    if (!row) return { kind: 'none' };

    let interrupted = row.interrupted;
    if (row.status === 'sending') {
      // Its worker died (or hung) mid-attempt: that attempt's result is unknown.
      interrupted += 1;
      this.sql.markLost.run(now, row.id, row.attempts);
      const lostAttempt: AttemptEvent = { id: row.id, attempt: row.attempts, outcome: 'interrupted', reason: 'lease expired', latencyMs: 0 };
      events.push(() => this.emit('attempt', lostAttempt));
      if (interrupted >= this.maxInterruptions) {
        const reason = `interrupted ${interrupted} times`;
        this.sql.giveUp.run(interrupted, reason, now, now, row.id);
        const gaveUp = settledOf(row, 'failed', row.attempts, reason);
        events.push(() => this.emit('settled', gaveUp));
        return { kind: 'gave-up' };
      }
    }
    const changed = this.sql.claim.run(
      interrupted,
      now + this.leaseMs(row.provider),
      this.workerId,
      now,
      row.id,
      row.status,
      row.attempts,
    ).changes;
    if (changed !== 1) return { kind: 'none' };
    const attempt = row.attempts + 1;
    this.sql.startAttempt.run(row.id, attempt, now, this.workerId);
    return { kind: 'claimed', row: { ...row, interrupted, attempt } };
  }

  private async deliver(row: Claimed, stopping: AbortSignal): Promise<void> {
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
   */
  private record(row: Claimed, result: SendResult, cancelled: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.toRecord.push({ row, result, cancelled, resolve, reject });
      if (this.toRecord.length === 1) setImmediate(() => this.flushRecords());
    });
  }

  private flushRecords(): void {
    const batch = this.toRecord.splice(0);
    if (batch.length === 0) return;
    const now = Date.now();
    let written: Written[];
    try {
      written = this.db.transaction(() => batch.map((b) => this.write(b.row, b.result, b.cancelled, now))).immediate();
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => {
      this.announce(b.row, b.result, written[i]!);
      b.resolve();
    });
  }

  private write(row: Claimed, result: SendResult, cancelled: boolean, now: number): Written {
    const provider = this.providers.get(row.provider);
    const outcome: AttemptEvent['outcome'] = cancelled ? 'interrupted' : result.outcome;
    let next: Written['next'];
    if (cancelled) {
      next = { status: 'pending', nextAt: now, reason: 'interrupted by shutdown' };
    } else if (result.outcome === 'ok') {
      next = { status: 'sent', nextAt: null, reason: result.reason };
    } else if (result.outcome === 'retry') {
      const answered = row.attempt - row.interrupted;
      const policy = provider?.retry ?? { count: 0, intervalMs: 0 };
      if (answered <= policy.count) {
        const wait = Math.max(retryDelay(policy, answered), Math.min(result.retryAfterMs ?? 0, this.maxRetryAfterMs));
        next = { status: 'pending', nextAt: now + wait, reason: result.reason };
      } else {
        next = { status: 'failed', nextAt: null, reason: `${result.reason} (no retries left)` };
      }
    } else {
      next = { status: 'failed', nextAt: null, reason: result.reason };
    }
    const settles = next.status === 'sent' || next.status === 'failed';
    // The attempt row keeps the real answer even if another worker already wrote the attempt
    // off as interrupted after our lease ran out.
    this.sql.finishAttempt.run(
      now,
      outcome,
      cancelled ? 'interrupted by shutdown' : result.reason,
      result.status ?? null,
      result.body === undefined ? null : excerpt(result.body),
      Math.round(result.latencyMs),
      result.error ?? null,
      row.id,
      row.attempt,
    );
    const changed = this.sql.settle.run(
      next.status,
      next.nextAt,
      next.reason,
      cancelled ? 1 : 0,
      result.providerMessageId ?? null,
      now,
      settles ? now : null,
      row.id,
      this.workerId,
      row.attempt,
    ).changes;
    return { next, outcome, settles, owned: changed === 1 };
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
    else if (w.next.status === 'sent') this.log?.info(log, 'SMS sent');
    else this.log?.info({ ...log, retryAt: w.next.nextAt }, 'SMS attempt failed, will retry');
    if (w.settles) {
      this.emit('settled', settledOf(row, w.next.status as 'sent' | 'failed', row.attempt, w.next.reason, result.providerMessageId));
    }
  }

  private mask(number: string): string | undefined {
    return maskNumber(number, this.log?.level ?? 'info');
  }
}

function settledOf(
  row: DueRow,
  status: 'sent' | 'failed',
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

/** The wait before retry n+1 after `answered` answered attempts: the interval, growing by `backoff`. */
export function retryDelay(policy: RetryPolicy, answered: number): number {
  const factor = policy.backoff ?? 1;
  const delay = policy.intervalMs * factor ** Math.max(0, answered - 1);
  return Math.min(delay, policy.maxIntervalMs ?? Number.POSITIVE_INFINITY);
}

export function createOutbox(opts: OutboxOptions): Outbox {
  return new Outbox(opts);
}
