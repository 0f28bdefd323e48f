import { rowsFrom, rowsParam, statement, type Queryable, type Rows, type StorePort } from '../store/port.js';

/**
 * The table side of a durable queue: the lease columns, and the SQL that claims a due row under a
 * lease, takes a row back from a worker that died, and gives up on a row that keeps being cut off.
 * The SMS outbox, the hook runs and the Salesforce activities each keep their own table (its other
 * columns, statuses, attempt records and events); what keeps a row with one worker at a time while
 * workers crash and share a database is the same for all three, so it is written once, here.
 *
 * What a leased table has, besides its own columns:
 * - the lease columns, from `leaseColumnsDdl`;
 * - `status` with at least 'pending' (due at `next_at`), 'sending' (held under `lease_until` by
 *   `claimed_by`) and 'failed'; `reason`, `updated_at` and `settled_at`;
 * - an index on (status, next_at), which every claim walks;
 * - an attempt table with `attempt`, `outcome` ('sending' while under way), `reason` and
 *   `finished_at`, whose rows point at the queue row.
 *
 * A claim runs inside an IMMEDIATE transaction: SQLite admits one writer, so between the SELECT and
 * the guarded UPDATE nobody else can take the same row. PostgreSQL lets writers run side by side,
 * so there the SELECT locks the row it picks (`FOR UPDATE SKIP LOCKED`): a second worker claiming
 * at the same moment passes over it to the next due row instead of waiting for it or taking it
 * too. The guard (same status, same attempts) is what still holds if a row is taken by a caller
 * that read it earlier (`take`).
 *
 * Nothing is re-queued when a worker starts: a `sending` row whose lease has run out is due again,
 * so a second worker on the same database never takes a row the first is still sending.
 */

const LEASE_COLUMNS = {
  attempts: 'attempts INTEGER NOT NULL DEFAULT 0',
  interrupted: 'interrupted INTEGER NOT NULL DEFAULT 0',
  next_at: 'next_at INTEGER',
  lease_until: 'lease_until INTEGER',
  claimed_by: 'claimed_by TEXT',
} as const;

export type LeaseColumn = keyof typeof LEASE_COLUMNS;

const ALL_LEASE_COLUMNS = Object.keys(LEASE_COLUMNS) as LeaseColumn[];

/**
 * The lease columns' definitions for a CREATE TABLE, in the order given (all of them by default),
 * one a line at `indent`. The order and the indent are the caller's because the tables that shipped
 * put their own columns between them: a migration that has run must stay the text it was, or a
 * new database would differ from an old one.
 */
export function leaseColumnsDdl(columns: readonly LeaseColumn[] = ALL_LEASE_COLUMNS, indent = '        '): string {
  return columns.map((c) => LEASE_COLUMNS[c]).join(`,\n${indent}`);
}

/** What every leased row is read with. */
export interface LeasedRow {
  status: string;
  attempts: number;
  interrupted: number;
}

export interface LeasedTableSpec<R extends LeasedRow> {
  /** The queue table. */
  table: string;
  /** Its primary key. */
  key: keyof R & string;
  /** The attempt table, and its column that holds the queue row's key. */
  attempts: { table: string; key: string };
  /** The SELECT list a claimed row is read with, over the table as `r`. */
  columns: string;
  /** Which due row goes first (columns of `r`); a row taken back from a dead worker wins a tie. */
  order: readonly string[];
  /** Rows that belong to the queue at all (a condition on `r`); others are never claimed. */
  queued?: string;
  /** A condition on `r` a due row must also meet, e.g. "the earlier rows of its chain have settled". */
  ready?: string;
  /**
   * Claiming counts the attempt (`attempts + 1`). False where a claimed row may end without one
   * (a hook whose condition does not hold): the feature counts it when the attempt starts.
   */
  countsAttemptOnClaim: boolean;
}

export interface LeasedTableOptions {
  /** Written to `claimed_by`; the feature's own guarded writes compare it. */
  worker: string;
  /** A row whose attempts were cut off this many times fails instead of looping. */
  maxInterruptions: number;
}

/** Why an attempt whose lease ran out was written off; also what the features report of it. */
export const LEASE_EXPIRED = 'lease expired';

export interface ClaimHandlers<R, J> {
  /** The clock leases and `next_at` are compared with. */
  now(): number;
  /** How long the row may stay `sending` before another worker takes it back. */
  leaseMs(row: R): number;
  /**
   * Inside the claim's transaction (`tx`): the feature's own writes for the claimed row (its
   * attempt record) and the job the worker runs. `row` is as read, before the claim.
   */
  claimed(row: R, interrupted: number, now: number, tx: Queryable): J | Promise<J>;
  /** After the commit: the attempt `row.attempts` of a row whose lease ran out was written off. */
  lost?(row: R, now: number): void;
  /**
   * Inside the claim's transaction, for a row whose attempt was just found cut off: a final status
   * to settle it at instead of trying again (an at-most-once SMS, whose outcome is now unknown).
   */
  settleLost?(row: R): { status: string; reason: string } | undefined;
  /** After the commit: the row was settled at `status` ('failed' when cut off too often) with `reason`. */
  gaveUp(row: R, reason: string, interrupted: number, status: string): void;
}

/** claimBatch's handlers: the feature writes for the whole batch at once. */
export interface BatchClaimHandlers<R, J> extends Omit<ClaimHandlers<R, J>, 'claimed'> {
  /**
   * Inside the claim's transaction: the feature's own writes for every claimed row (in one
   * statement, see rowsFrom) and their jobs, in the order given. Each `row` is as read, before the claim.
   */
  claimed(rows: ReadonlyArray<Ready<R>>, now: number, tx: Queryable): Promise<J[]>;
}

/** A due row about to be taken, its cut-off attempt (if it had one) written off. */
export interface Ready<R> {
  row: R;
  interrupted: number;
  /** Its previous attempt was cut off (the lease ran out) and has just been written off. */
  lost: boolean;
}

/** A lease on a row its caller already knows (a retry it waited for itself). */
export interface Take {
  id: string;
  /** The status and attempts it was read with: if either changed, someone else has it. */
  status: string;
  attempts: number;
  interrupted: number;
  leaseUntil: number;
  now: number;
}

const ORDER_KEY = 'leased_order_';

type Ordered = Record<string, unknown>;

function prepare<R extends LeasedRow>(spec: LeasedTableSpec<R>) {
  const { table, key } = spec;
  const queued = spec.queued ? `${spec.queued} AND ` : '';
  const ready = spec.ready ? ` AND ${spec.ready}` : '';
  // @busy is a JSON array on SQLite, a text[] on PostgreSQL (see `busyParam`)
  const notBusy = {
    sqlite: `r.${key} NOT IN (SELECT value FROM json_each(@busy))`,
    postgres: `r.${key} <> ALL(@busy::text[])`,
  };
  const orderKeys = spec.order.map((c, i) => `${c} AS ${ORDER_KEY}${i}`).join(', ');
  // Two lookups rather than one OR: each walks the (status, next_at) index in order and stops at
  // the first row, where the OR made SQLite gather and sort every due row on every claim, which
  // costs O(backlog) per row once a burst or an outage has built one up. PostgreSQL sorts NULL
  // last unless told, and `before()` compares as SQLite sorts; it locks the row it returns.
  // @limit: 1 for a claim of one row; a batch reads the rows it has room for in one statement.
  const due = (when: string) =>
    statement<[{ now: number; busy: unknown; limit: number }], R & Ordered>({
      sqlite: `SELECT ${spec.columns}, ${orderKeys} FROM ${table} r
        WHERE ${queued}${when} AND ${notBusy.sqlite}${ready}
        ORDER BY ${spec.order.join(', ')} LIMIT @limit`,
      postgres: `SELECT ${spec.columns}, ${orderKeys} FROM ${table} r
        WHERE ${queued}${when} AND ${notBusy.postgres}${ready}
        ORDER BY ${spec.order.map((c) => `${c} NULLS FIRST`).join(', ')} LIMIT @limit
        FOR UPDATE OF r SKIP LOCKED`,
    });
  const nextWake = (notBusy: string) =>
    `SELECT MIN(at) AS at FROM (
         SELECT MIN(r.next_at) AS at FROM ${table} r WHERE ${queued}r.status = 'pending'${ready}
         UNION ALL
         SELECT MIN(r.lease_until) FROM ${table} r WHERE ${queued}r.status = 'sending' AND ${notBusy}) w`;
  return {
    duePending: due(`r.status = 'pending' AND r.next_at <= @now`),
    dueLost: due(`r.status = 'sending' AND r.lease_until <= @now`),
    nextWake: statement<[{ busy: unknown }], { at: number | null }>({ sqlite: nextWake(notBusy.sqlite), postgres: nextWake(notBusy.postgres) }),
    markLost: statement<[number, string, number]>(
      `UPDATE ${spec.attempts.table} SET outcome = 'interrupted', reason = '${LEASE_EXPIRED}', finished_at = ?
        WHERE ${spec.attempts.key} = ? AND attempt = ? AND outcome = 'sending'`,
    ),
    giveUp: statement<[string, number, string, number, number, string]>(
      `UPDATE ${table} SET status = ?, interrupted = ?, reason = ?, lease_until = NULL, next_at = NULL,
         updated_at = ?, settled_at = ? WHERE ${key} = ?`,
    ),
    // Every row of a batch in one statement (see rowsFrom); the guard is per row.
    take: statement<[{ rows: Rows; worker: string; now: number }], { id: string }>(
      // v's key column is not named as the table's: SQLite's RETURNING names no alias, and an
      // unqualified name both sides have is ambiguous on PostgreSQL
      rowsFrom('rows', 'v', { row_key: 'text', status: 'text', attempts: 'bigint', interrupted: 'bigint', lease_until: 'bigint' }, (from) =>
        `UPDATE ${table} AS r SET status = 'sending',${spec.countsAttemptOnClaim ? ' attempts = r.attempts + 1,' : ''}
           interrupted = v.interrupted, lease_until = v.lease_until, claimed_by = @worker, updated_at = @now
          FROM ${from}
         WHERE r.${key} = v.row_key AND r.status = v.status AND r.attempts = v.attempts
         RETURNING ${key} AS id`,
      ),
    ),
  };
}

/** The ids in flight as each backend binds them: a JSON array for json_each, a text[] for ALL(). */
function busyParam(q: Queryable, busy: ReadonlySet<string>): unknown {
  return q.kind === 'sqlite' ? JSON.stringify([...busy]) : [...busy];
}

export class LeasedTable<R extends LeasedRow> {
  private readonly sql: ReturnType<typeof prepare<R>>;

  constructor(
    private readonly store: StorePort,
    private readonly spec: LeasedTableSpec<R>,
    private readonly opts: LeasedTableOptions,
  ) {
    this.sql = prepare(spec);
  }

  /** Epoch ms at which a row may next be due: the earliest pending row, or a lease not in `busy` running out. */
  async nextWakeAt(busy: ReadonlySet<string>): Promise<number | null | undefined> {
    return (await this.sql.nextWake.get(this.store, { busy: busyParam(this.store, busy) }))?.at;
  }

  /**
   * Claims up to `room` rows in one IMMEDIATE transaction: one durable commit for the batch
   * instead of one per row, for a queue whose jobs need nothing from each other.
   *
   * The due rows are read `room` at a time (two statements, pending and lost, merged in the due
   * order) rather than one lookup pair per row: on PostgreSQL every statement is a round trip on
   * a transaction that holds its rows locked, and the per-row lookups were half of a claim's round
   * trips (bench/outbox.js). On PostgreSQL rows read but left for the next batch stay locked, so
   * skipped by other workers, only until this transaction ends.
   */
  async claimBatch<J>(room: number, busy: ReadonlySet<string>, h: BatchClaimHandlers<R, J>): Promise<J[]> {
    const now = h.now();
    const jobs: J[] = [];
    const after: Array<() => void> = [];
    await this.store.transaction(
      async (tx) => {
        const inFlight = busyParam(tx, busy);
        // Rows given up on take no room, so read again until the room is full or nothing is due;
        // a row taken (or given up) is no longer due, so the next read returns new ones.
        while (jobs.length < room) {
          const limit = room - jobs.length;
          const pending = await this.sql.duePending.all(tx, { now, busy: inFlight, limit });
          const lost = await this.sql.dueLost.all(tx, { now, busy: inFlight, limit });
          if (pending.length === 0 && lost.length === 0) return;
          const ready: Array<Ready<R>> = [];
          for (const first of this.merged(pending, lost, limit)) {
            const r = await this.writeOff(tx, first, now, h, after);
            if (r) ready.push(r);
          }
          const taken = await this.takeAll(ready.map((r) => this.takeOf(r, now, h)), now, tx);
          const claimed = ready.filter((r) => taken.has(r.row[this.spec.key] as string));
          for (const c of claimed) if (c.lost && h.lost) after.push(() => h.lost!(c.row, now));
          if (claimed.length > 0) jobs.push(...(await h.claimed(claimed, now, tx)));
          // a row whose status or attempts changed since it was read is someone else's: stop, as a one-row claim does
          if (claimed.length < ready.length) return;
          // both reads came back short and every row read was taken or given up: nothing is left due
          if (pending.length < limit && lost.length < limit && pending.length + lost.length <= limit) return;
        }
      },
      { immediate: true },
    );
    for (const f of after) f();
    return jobs;
  }

  /** The first `limit` of two lists sorted in the due order, as one list in that order. */
  private merged(pending: Array<R & Ordered>, lost: Array<R & Ordered>, limit: number): Array<R & Ordered> {
    const out: Array<R & Ordered> = [];
    let i = 0;
    let j = 0;
    while (out.length < limit && (i < pending.length || j < lost.length)) {
      const p = pending[i];
      const l = lost[j];
      if (l && (!p || this.before(l, p))) {
        out.push(l);
        j++;
      } else {
        out.push(p!);
        i++;
      }
    }
    return out;
  }

  /**
   * Claims one row per transaction, as the worker pulls: it starts each job (and adds it to `busy`)
   * before the next is claimed, so a job that settles at once can free the next row of its chain
   * for the same pass.
   */
  async *claimEach<J>(busy: ReadonlySet<string>, h: ClaimHandlers<R, J>): AsyncGenerator<J> {
    for (;;) {
      const now = h.now();
      const after: Array<() => void> = [];
      const c = await this.store.transaction((tx) => this.claimNext(tx, now, busyParam(tx, busy), h, after), { immediate: true });
      for (const f of after) f();
      if (c === undefined) return;
      if (c !== null) yield c;
    }
  }

  /**
   * Puts a row the caller already knows under this worker's lease; false when its status or
   * attempts changed since it was read, i.e. another worker has it.
   */
  async take(t: Take, q: Queryable = this.store): Promise<boolean> {
    return (await this.takeAll([t], t.now, q)).size === 1;
  }

  /** Leases every row given in one statement; the ids of those whose status and attempts were still as read. */
  private async takeAll(takes: ReadonlyArray<Omit<Take, 'now'>>, now: number, q: Queryable): Promise<Set<string>> {
    if (takes.length === 0) return new Set();
    const rows = rowsParam(
      takes.map((t) => ({ row_key: t.id, status: t.status, attempts: t.attempts, interrupted: t.interrupted, lease_until: t.leaseUntil })),
    );
    const taken = await this.sql.take.all(q, { rows, worker: this.opts.worker, now });
    return new Set(taken.map((t) => t.id));
  }

  private takeOf(r: Ready<R>, now: number, h: Pick<ClaimHandlers<R, unknown>, 'leaseMs'>): Omit<Take, 'now'> {
    const { row } = r;
    return { id: row[this.spec.key] as string, status: row.status, attempts: row.attempts, interrupted: r.interrupted, leaseUntil: now + h.leaseMs(row) };
  }

  /**
   * Takes the first due row. Must run inside an IMMEDIATE transaction. Returns the job, null when
   * the row was given up instead, undefined when nothing is due. Events go to `after`, for the
   * caller to run once the transaction has committed.
   */
  private async claimNext<J>(tx: Queryable, now: number, busy: unknown, h: ClaimHandlers<R, J>, after: Array<() => void>): Promise<J | null | undefined> {
    const pending = await this.sql.duePending.all(tx, { now, busy, limit: 1 });
    const lost = await this.sql.dueLost.all(tx, { now, busy, limit: 1 });
    const [first] = this.merged(pending, lost, 1);
    if (!first) return undefined;
    const r = await this.writeOff(tx, first, now, h, after);
    if (!r) return null;
    if ((await this.takeAll([this.takeOf(r, now, h)], now, tx)).size === 0) return undefined;
    if (r.lost && h.lost) after.push(() => h.lost!(r.row, now));
    return h.claimed(r.row, r.interrupted, now, tx);
  }

  /**
   * A due row just read (locked, on PostgreSQL) in this transaction, made ready to take: a row
   * left `sending` by a worker that died has its cut-off attempt written off, and is given up
   * instead (null, its events queued on `after`) when the feature settles it or it was cut off too often.
   */
  private async writeOff(
    tx: Queryable,
    first: R & Ordered,
    now: number,
    h: Pick<ClaimHandlers<R, unknown>, 'settleLost' | 'lost' | 'gaveUp'>,
    after: Array<() => void>,
  ): Promise<Ready<R> | null> {
    const row = this.withoutOrderKeys(first);
    if (row.status !== 'sending') return { row, interrupted: row.interrupted, lost: false };
    const id = row[this.spec.key] as string;
    // Its worker died (or hung) mid-attempt: what that attempt did is unknown. A row claimed but
    // never started has no attempt under way, and nothing was cut off.
    const lost = (await this.sql.markLost.run(tx, now, id, row.attempts)).changes > 0;
    const interrupted = row.interrupted + (lost ? 1 : 0);
    const settled = (lost ? h.settleLost?.(row) : undefined) ??
      (interrupted >= this.opts.maxInterruptions ? { status: 'failed', reason: `interrupted ${interrupted} times` } : undefined);
    if (!settled) return { row, interrupted, lost };
    await this.sql.giveUp.run(tx, settled.status, interrupted, settled.reason, now, now, id);
    if (lost && h.lost) after.push(() => h.lost!(row, now));
    after.push(() => h.gaveUp(row, settled.reason, interrupted, settled.status));
    return null;
  }

  /** True when `a` sorts at or before `b` in the due order (NULL first, as SQLite sorts). */
  private before(a: Ordered, b: Ordered): boolean {
    for (let i = 0; i < this.spec.order.length; i++) {
      const x = a[ORDER_KEY + i] as number | string | null;
      const y = b[ORDER_KEY + i] as number | string | null;
      if (x === y) continue;
      if (x === null) return true;
      if (y === null) return false;
      return x < y;
    }
    return true;
  }

  private withoutOrderKeys(row: R & Ordered): R {
    for (let i = 0; i < this.spec.order.length; i++) delete row[ORDER_KEY + i];
    return row;
  }
}

/** How the wait before a retry grows: `intervalMs`, times `backoff` per further failure, at most `maxIntervalMs`. */
export interface Backoff {
  intervalMs: number;
  /** 1 (the default) keeps the interval fixed. */
  backoff?: number;
  maxIntervalMs?: number;
}

/** The wait after the `failures`-th failed attempt in a row. */
export function retryDelay(policy: Backoff, failures: number): number {
  const factor = policy.backoff ?? 1;
  // Bounded so that a zero interval after very many failures stays 0 instead of 0 × ∞ = NaN.
  const delay = policy.intervalMs * factor ** Math.min(20, Math.max(0, failures - 1));
  return Math.min(delay, policy.maxIntervalMs ?? Number.POSITIVE_INFINITY);
}

/**
 * The wait before the next attempt: our own delay, or longer when the other side asked for it
 * (Retry-After), but never longer than `maxRetryAfterMs` on its say-so.
 */
export function retryWait(policy: Backoff, failures: number, retryAfterMs: number | undefined, maxRetryAfterMs: number): number {
  // Whole milliseconds: `next_at` is a BIGINT on PostgreSQL, which refuses 499.5 (333 ms × 1.5).
  return Math.round(Math.max(retryDelay(policy, failures), Math.min(retryAfterMs ?? 0, maxRetryAfterMs)));
}
