import type { Logger } from '../log.js';

/**
 * The loop of a durable queue worker: claim due jobs up to a concurrency, run them, sleep until
 * the next one is due, stop with a grace period. The SMS outbox (src/sms/outbox.ts), the hook runs
 * (src/hooks/worker.ts) and the Salesforce activities (src/crm/salesforce/worker.ts) share it;
 * each keeps its own tables, retry policy, attempt records and events, and implements
 * `DurableQueue` over them.
 *
 * What the loop assumes of a queue, and every queue here does:
 *
 * - Jobs are rows. Claiming one marks it in flight with a lease (`lease_until`) in the same
 *   transaction that selects it, so two workers on one database never both hold it.
 * - A row whose lease has run out is due again: its worker died or hung. Taking such a row back
 *   (writing the lost attempt off as interrupted, giving up after too many) is part of `claim`.
 *   That is the crash recovery; nothing is re-queued at start, which would take rows from another
 *   worker still sending them. src/queue/leased-table.ts implements this side for a table.
 * - The queue knows when it next has work: the earliest pending row, or the earliest lease that
 *   another worker holds and may let run out (`nextWakeAt`). The loop sleeps until then instead of
 *   polling, and is woken sooner by `kick()` when new rows are committed.
 *
 * To adopt it: drop the running / pumpQueued / timer / stopSignal / inFlight fields and kick / pump
 * / arm, construct a worker over the queue's own methods, call `kick()` after committing new rows,
 * and forward `start()`, `stop()` and `busy`. `name` keeps the existing log lines ("<name> could
 * not claim work"); `now` is the queue's own clock, if it has one. A LeasedTable gives `claim`
 * (claimBatch: one transaction for the batch, as the SMS outbox; claimEach: one per row, as the
 * hook and Salesforce workers) and `nextWakeAt`.
 *
 * `deliver` gets the worker's stop signal; `attemptSignal` combines it with the attempt's deadline
 * and tells a cancelled attempt (back to pending without spending a retry) from a timeout.
 */

export interface DurableQueue<J> {
  /** The job's id, unique among the jobs in flight (the row's primary key). */
  id(job: J): string;
  /**
   * Claims up to `room` due jobs, none of them in `busy`, each under a lease. Pulled lazily: an
   * array claimed in one transaction (one commit for the batch), or an async generator that claims
   * one job per pull. The worker starts each job before pulling the next, keeps `busy` up to date
   * as it does, and stops pulling when it has no room left.
   */
  claim(room: number, busy: ReadonlySet<string>): Promise<Iterable<J>> | AsyncIterable<J>;
  /** Epoch ms at which a job may next be due (a pending row, a lease not in `busy` running out); null when none. */
  nextWakeAt(busy: ReadonlySet<string>): Promise<number | null | undefined>;
  /**
   * Runs one claimed job and records its result. `stopping` fires when stop()'s grace is over.
   * A queue that records results in batches calls `release()` once the job's work is done and only
   * its write is left: the slot goes to the next claim, whose commit then overlaps this write's
   * instead of following it (one commit's wait less per round on PostgreSQL; bench/outbox.js).
   */
  deliver(job: J, stopping: AbortSignal, release: () => void): Promise<void>;
  /** `deliver` rejected: its result could not be recorded. The job's lease brings it back later. */
  deliverFailed(job: J, err: unknown): void;
  /** Called by start() before the first claim, for work a previous process left that no lease brings back. */
  recover?(): Promise<void>;
}

export interface DurableWorkerOptions {
  /** Jobs in flight at once; at least 1. */
  concurrency: number;
  /** False while the database cannot be used: nothing is claimed; the worker looks again every second. */
  ready(): boolean;
  /** Names the worker in its own log lines: "<name> could not claim work". */
  name: string;
  logger?: Logger;
  /** The clock `nextWakeAt` is measured against. Default Date.now. */
  now?: () => number;
  /** Told of each claim or delivery that could or could not write (a full disk): /health shows it. */
  writes?: { failed(err: unknown): void; succeeded(): void };
}

/** How long a worker whose claim failed (SQLITE_BUSY past busy_timeout, a full disk…) waits before trying again. */
const CLAIM_RETRY_MS = 1_000;
/** The shortest sleep: a row that is due but cannot be claimed must not turn into a spin. */
const MIN_SLEEP_MS = 10;
/** setTimeout's largest delay; a longer one fires at once. */
const MAX_SLEEP_MS = 2 ** 31 - 1;

export class DurableWorker<J> {
  private readonly concurrency: number;
  private readonly now: () => number;
  private running = false;
  private pumpQueued = false;
  /** A pump is claiming (its statements are awaited): a kick meanwhile pumps again after it. */
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  /** start()'s recovery, which the first claim waits for. */
  private recovered: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopSignal = new AbortController();
  /** The ids claimed and not yet finished: what claim and nextWakeAt skip. */
  private readonly inFlight = new Set<string>();
  /** Jobs in flight that have not released their slot: what `concurrency` bounds. */
  private holding = 0;
  /** Their deliveries, which stop() waits for. */
  private readonly deliveries = new Set<Promise<void>>();

  constructor(
    private readonly queue: DurableQueue<J>,
    private readonly opts: DurableWorkerOptions,
  ) {
    this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopSignal = new AbortController();
    this.recovered = (this.queue.recover?.() ?? Promise.resolve()).catch((e: unknown) => {
      this.opts.writes?.failed(e);
      this.opts.logger?.error({ err: e }, `${this.opts.name} could not recover work left by a previous process`);
    });
    this.kick();
  }

  /**
   * Stops claiming, lets jobs in flight finish for up to `graceMs`, then fires their `stopping`
   * signal and waits for them to record how far they got.
   */
  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // a claim under way finishes (its jobs are then in `deliveries`)
    await this.pumping;
    if (this.deliveries.size === 0) return;
    const all = () => Promise.all([...this.deliveries]).then(() => undefined);
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, opts.graceMs ?? 5_000);
    });
    await Promise.race([all(), grace]);
    clearTimeout(graceTimer);
    this.stopSignal.abort();
    await all();
  }

  /** Jobs in flight right now. */
  get busy(): number {
    return this.inFlight.size;
  }

  /** New rows were committed: claim on the next turn of the event loop. Many kicks in one turn claim once. */
  kick(): void {
    if (!this.running || this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pumpOnce().finally(() => {
      this.pumping = undefined;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.pump();
      }
    });
  }

  private async pumpOnce(): Promise<void> {
    await this.recovered;
    if (!this.running) return;
    if (!this.opts.ready()) {
      // PostgreSQL unreachable (or the store closing): look again later, or rows accepted before
      // the outage would wait for the next kick
      void this.arm(CLAIM_RETRY_MS);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      if (this.room() > 0) {
        let claimed = 0;
        const source = await this.queue.claim(this.room(), this.inFlight);
        for await (const job of source) {
          claimed++;
          this.launch(job);
          if (this.room() <= 0) break;
        }
        // a claim that returned a job wrote its lease: the store takes writes
        if (claimed) this.opts.writes?.succeeded();
      }
      // When full, the next finished job kicks; there is nothing to wait for until then.
      if (this.room() > 0) await this.arm();
    } catch (e) {
      this.opts.writes?.failed(e);
      this.opts.logger?.error({ err: e }, `${this.opts.name} could not claim work`);
      void this.arm(CLAIM_RETRY_MS);
    }
  }

  /**
   * Jobs the next claim may take: free slots, and no more than `concurrency` results waiting to
   * be written besides, so a store slower than the sends holds the worker back.
   */
  private room(): number {
    return Math.min(this.concurrency - this.holding, 2 * this.concurrency - this.inFlight.size);
  }

  private launch(job: J): void {
    const id = this.queue.id(job);
    this.inFlight.add(id);
    this.holding++;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.holding--;
      this.kick();
    };
    const p: Promise<void> = this.queue
      .deliver(job, this.stopSignal.signal, release)
      .then(
        () => this.opts.writes?.succeeded(),
        (e: unknown) => {
          this.opts.writes?.failed(e);
          this.queue.deliverFailed(job, e);
        },
      )
      .finally(() => {
        release();
        this.inFlight.delete(id);
        this.deliveries.delete(p);
        this.kick();
      });
    this.deliveries.add(p);
  }

  /** Sleeps until the queue's next job may be due, or for `fixedDelayMs`. */
  private async arm(fixedDelayMs?: number): Promise<void> {
    let delay = fixedDelayMs;
    if (delay === undefined) {
      const at = await this.queue.nextWakeAt(this.inFlight);
      if (at == null || !this.running) return;
      delay = Math.max(MIN_SLEEP_MS, at - this.now());
    }
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pump(), Math.min(delay, MAX_SLEEP_MS));
    // A sleeping queue must not keep the process alive.
    this.timer.unref();
  }
}

/**
 * The signal one attempt runs under: its own deadline or the worker's stop, whichever fires first.
 * `stopped()` tells them apart afterwards: only our own shutdown makes an attempt "interrupted"
 * (its job goes back to pending without spending a retry); a deadline is an ordinary timeout.
 */
export function attemptSignal(deadlineMs: number, stopping: AbortSignal): { signal: AbortSignal; stopped(): boolean } {
  const deadline = AbortSignal.timeout(deadlineMs);
  return {
    signal: AbortSignal.any([deadline, stopping]),
    stopped: () => stopping.aborted && !deadline.aborted,
  };
}
