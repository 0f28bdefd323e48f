import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LEASE_EXPIRED,
  LeasedTable,
  leaseColumnsDdl,
  retryDelay,
  retryWait,
  type BatchClaimHandlers,
  type ClaimHandlers,
  type LeasedTableSpec,
} from '../../src/queue/leased-table.js';
import type { StorePort } from '../../src/store/port.js';
import type { Migration } from '../../src/store/sqlite.js';
import { BACKENDS, usePostgres, type Backend } from '../helpers/backends.js';

usePostgres();

type Store = StorePort;

/** The smallest leased table: what the helper needs and a `grp` for a `ready` condition. */
const migrations: Migration[] = [
  {
    id: 'test/001-jobs',
    up: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        grp TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        ${leaseColumnsDdl()},
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        settled_at INTEGER,
        reason TEXT
      );
      CREATE INDEX jobs_due ON jobs (status, next_at);
      CREATE TABLE job_attempts (
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        finished_at INTEGER,
        worker TEXT,
        PRIMARY KEY (job_id, attempt)
      );
    `,
    postgres: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        grp TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        interrupted INTEGER NOT NULL DEFAULT 0,
        next_at BIGINT,
        lease_until BIGINT,
        claimed_by TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        settled_at BIGINT,
        reason TEXT
      );
      CREATE INDEX jobs_due ON jobs (status, next_at);
      CREATE TABLE job_attempts (
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        finished_at BIGINT,
        worker TEXT,
        PRIMARY KEY (job_id, attempt)
      );
    `,
  },
];

interface Job {
  id: string;
  status: string;
  attempts: number;
  interrupted: number;
}

const spec: LeasedTableSpec<Job> = {
  table: 'jobs',
  key: 'id',
  attempts: { table: 'job_attempts', key: 'job_id' },
  columns: 'r.id, r.status, r.attempts, r.interrupted',
  order: ['r.next_at', 'r.created_at'],
  countsAttemptOnClaim: true,
};

const T0 = 1_000_000;
const LEASE_MS = 1_000;

let dir: string;
const stores: Store[] = [];
let backend: Backend;
let shared: () => Promise<Store>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'call-actions-leased-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A store on this test's database: the first call makes the database, later ones open it again (another worker). */
async function open(): Promise<Store> {
  if (stores.length === 0) {
    const fresh = await backend.fresh(join(dir, 'queue.db'), migrations);
    shared = fresh.shared;
    stores.push(fresh.store);
    return fresh.store;
  }
  const s = await shared();
  stores.push(s);
  return s;
}

/** A worker's view of the table: its handlers record what they were told, at a clock the test moves. */
function worker(store: Store, name: string, opts: { maxInterruptions?: number; spec?: LeasedTableSpec<Job> } = {}) {
  const table = new LeasedTable<Job>(store, opts.spec ?? spec, { worker: name, maxInterruptions: opts.maxInterruptions ?? 3 });
  const clock = { now: T0 };
  const lost: Array<[string, number]> = [];
  const gaveUp: Array<[string, string, number]> = [];
  const h: ClaimHandlers<Job, string> = {
    now: () => clock.now,
    leaseMs: () => LEASE_MS,
    claimed: async (row, _interrupted, _now, tx) => {
      await tx.run("INSERT INTO job_attempts (job_id, attempt, outcome, worker) VALUES (?, ?, 'sending', ?)", [row.id, row.attempts + 1, name]);
      return row.id;
    },
    lost: (row) => lost.push([row.id, row.attempts]),
    gaveUp: (row, reason, interrupted) => gaveUp.push([row.id, reason, interrupted]),
  };
  const batchHandlers: BatchClaimHandlers<Job, string> = {
    ...h,
    claimed: async (ready, now, tx) => {
      const ids: string[] = [];
      for (const r of ready) ids.push(await h.claimed(r.row, r.interrupted, now, tx));
      return ids;
    },
  };
  return {
    table,
    clock,
    lost,
    gaveUp,
    batch: (room: number, busy: ReadonlySet<string> = new Set()) => table.claimBatch(room, busy, batchHandlers),
    each: async (busy: Set<string> = new Set()) => {
      const got: string[] = [];
      for await (const id of table.claimEach(busy, h)) {
        got.push(id);
        busy.add(id);
      }
      return got;
    },
  };
}

async function insert(store: Store, id: string, nextAt = T0, over: { grp?: string; createdAt?: number } = {}): Promise<void> {
  await store.run("INSERT INTO jobs (id, grp, status, next_at, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)", [
    id,
    over.grp ?? '',
    nextAt,
    over.createdAt ?? T0,
    over.createdAt ?? T0,
  ]);
}

async function row(store: Store, id: string) {
  return (await store.one('SELECT * FROM jobs WHERE id = ?', [id]))!;
}

function attempts(store: Store, id: string) {
  return store.query('SELECT attempt, outcome, reason, worker FROM job_attempts WHERE job_id = ? ORDER BY attempt', [id]);
}

describe('leaseColumnsDdl', () => {
  it('gives the lease columns in the order asked, one a line', async () => {
    expect(leaseColumnsDdl(['next_at', 'claimed_by'], '  ')).toBe('next_at INTEGER,\n  claimed_by TEXT');
    expect(leaseColumnsDdl().split(',\n        ').map((d) => d.split(' ')[0])).toEqual([
      'attempts',
      'interrupted',
      'next_at',
      'lease_until',
      'claimed_by',
    ]);
  });
});

describe.each(BACKENDS)('LeasedTable on $name', (b) => {
  beforeEach(() => {
    backend = b;
  });

  it('two workers on one database file never hold the same row', async () => {
    const a = worker(await open(), 'A');
    const b = worker(await open(), 'B');
    for (let i = 0; i < 10; i++) await insert(stores[0]!, `job-${i}`);

    // Turn by turn, each claiming with nothing of its own in flight: only the lease keeps them apart.
    const got = { A: [] as string[], B: [] as string[] };
    for (let turn = 0; turn < 2; turn++) {
      got.A.push(...(await a.batch(2)));
      got.B.push(...(await b.batch(2)));
    }
    const all = [...got.A, ...got.B];
    expect(all).toHaveLength(8);
    expect(new Set(all).size).toBe(8);
    got.A.push(...(await a.each()));
    expect(await b.each()).toEqual([]);
    expect(new Set([...got.A, ...got.B]).size).toBe(10);
    for (const [name, ids] of Object.entries(got)) {
      for (const id of ids) expect(await row(stores[0]!, id)).toMatchObject({ status: 'sending', claimed_by: name, attempts: 1, lease_until: T0 + LEASE_MS });
    }
  });

  it('two workers claiming at the same moment, on their own connections, never take one row twice', async () => {
    const a = worker(await open(), 'A');
    const b = worker(await open(), 'B');
    for (let i = 0; i < 60; i++) await insert(stores[0]!, `job-${i}`);
    // Claims race on two connections: on PostgreSQL FOR UPDATE SKIP LOCKED passes over the row the
    // other is claiming; on SQLite the IMMEDIATE transactions take turns.
    const rounds = await Promise.all(
      [a, b].map(async (w) => {
        const got: string[] = [];
        for (let turn = 0; turn < 10; turn++) {
          const [batch, each] = await Promise.all([w.batch(2), w.each()]);
          got.push(...batch, ...each);
        }
        return got;
      }),
    );
    const all = rounds.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(60);
    const holders = await stores[0]!.query<{ claimed_by: string; n: number }>('SELECT claimed_by, COUNT(*) AS n FROM jobs GROUP BY claimed_by ORDER BY claimed_by');
    expect(holders.reduce((n, h) => n + h.n, 0)).toBe(60);
    expect(await stores[0]!.one("SELECT COUNT(*) AS n FROM job_attempts WHERE outcome = 'sending'")).toEqual({ n: 60 });
  });

  it('does not take a row whose status or attempts changed since it was read', async () => {
    const a = worker(await open(), 'A');
    const b = worker(await open(), 'B');
    await insert(stores[0]!, 'job-1');
    const seenByB = await row(stores[1]!, 'job-1');
    expect(await a.batch(1)).toEqual(['job-1']);
    const stale = { id: 'job-1', status: seenByB.status as string, attempts: seenByB.attempts as number, interrupted: 0, leaseUntil: T0 + 5, now: T0 };
    expect(await b.table.take(stale)).toBe(false);
    expect(await row(stores[0]!, 'job-1')).toMatchObject({ claimed_by: 'A', attempts: 1 });
  });

  it("takes a row back once its worker's lease has run out, and writes the lost attempt off", async () => {
    const a = worker(await open(), 'A');
    const b = worker(await open(), 'B');
    await insert(stores[0]!, 'job-1');
    expect(await a.batch(1)).toEqual(['job-1']);
    // A dies here. Until its lease runs out the row is A's.
    b.clock.now = T0 + LEASE_MS - 1;
    expect(await b.batch(1)).toEqual([]);
    expect(await b.table.nextWakeAt(new Set())).toBe(T0 + LEASE_MS);

    b.clock.now = T0 + LEASE_MS;
    expect(await b.batch(1)).toEqual(['job-1']);
    expect(b.lost).toEqual([['job-1', 1]]);
    expect(await row(stores[1]!, 'job-1')).toMatchObject({ status: 'sending', claimed_by: 'B', attempts: 2, interrupted: 1 });
    expect(await attempts(stores[1]!, 'job-1')).toEqual([
      { attempt: 1, outcome: 'interrupted', reason: LEASE_EXPIRED, worker: 'A' },
      { attempt: 2, outcome: 'sending', reason: null, worker: 'B' },
    ]);
  });

  it('does not count a row claimed but never started as interrupted', async () => {
    const store = await open();
    const a = worker(store, 'A', { spec: { ...spec, countsAttemptOnClaim: false } });
    await insert(store, 'job-1');
    // A feature that counts and records the attempt itself when it starts, and died before it did.
    const claimed = a.table.claimEach(new Set(), { now: () => T0, leaseMs: () => LEASE_MS, claimed: (r) => r.id, gaveUp: () => {} });
    expect((await claimed.next()).value).toBe('job-1');
    expect(await row(store, 'job-1')).toMatchObject({ status: 'sending', attempts: 0 });

    const b = worker(store, 'B', { spec: { ...spec, countsAttemptOnClaim: false } });
    b.clock.now = T0 + LEASE_MS;
    expect(await b.each()).toEqual(['job-1']);
    expect(b.lost).toEqual([]);
    expect(await row(store, 'job-1')).toMatchObject({ claimed_by: 'B', attempts: 0, interrupted: 0 });
  });

  it('gives a row up once its attempts were cut off maxInterruptions times', async () => {
    const store = await open();
    await insert(store, 'job-1');
    const holders = ['A', 'B', 'C', 'D'].map((name, i) => {
      const w = worker(store, name, { maxInterruptions: 3 });
      w.clock.now = T0 + i * LEASE_MS;
      return w;
    });
    expect(await holders[0]!.batch(1)).toEqual(['job-1']);
    expect(await holders[1]!.batch(1)).toEqual(['job-1']);
    expect(await holders[2]!.batch(1)).toEqual(['job-1']);
    expect(await row(store, 'job-1')).toMatchObject({ status: 'sending', attempts: 3, interrupted: 2 });

    const last = holders[3]!;
    expect(await last.batch(1)).toEqual([]);
    expect(last.lost).toEqual([['job-1', 3]]);
    expect(last.gaveUp).toEqual([['job-1', 'interrupted 3 times', 3]]);
    expect(await row(store, 'job-1')).toMatchObject({
      status: 'failed',
      reason: 'interrupted 3 times',
      interrupted: 3,
      lease_until: null,
      next_at: null,
      settled_at: T0 + 3 * LEASE_MS,
    });
    expect((await attempts(store, 'job-1')).map((x) => (x as { outcome: string }).outcome)).toEqual(['interrupted', 'interrupted', 'interrupted']);
    last.clock.now += 10 * LEASE_MS;
    expect(await last.batch(1)).toEqual([]);
    expect(await last.table.nextWakeAt(new Set())).toBeNull();
  });

  it('takes due rows earliest first, a lost one first on a tie, and skips busy, future and unready rows', async () => {
    const store = await open();
    const readySpec = { ...spec, ready: "r.grp <> 'blocked'" };
    const a = worker(store, 'A', { spec: readySpec });
    await insert(store, 'late', T0 + 500);
    await insert(store, 'a2', T0 - 10, { createdAt: T0 - 1 });
    await insert(store, 'a1', T0 - 10, { createdAt: T0 - 2 });
    await insert(store, 'blocked', T0 - 100, { grp: 'blocked' });
    expect(await a.batch(10)).toEqual(['a1', 'a2']);
    expect(await a.table.nextWakeAt(new Set(['a1', 'a2']))).toBe(T0 + 500);
    expect(await a.table.nextWakeAt(new Set(['a1']))).toBe(T0 + 500);
    expect(await a.table.nextWakeAt(new Set())).toBe(T0 + 500);

    // A dies; a1 and a2 are due again at their old next_at. p0 was created before a1, p ties with it.
    await insert(store, 'p', T0 - 10, { createdAt: T0 - 2 });
    await insert(store, 'p0', T0 - 10, { createdAt: T0 - 3 });
    const b = worker(store, 'B', { spec: readySpec });
    b.clock.now = T0 + LEASE_MS;
    expect(await b.table.nextWakeAt(new Set())).toBe(T0 - 10);
    expect(await b.each(new Set(['a2']))).toEqual(['p0', 'a1', 'p', 'late']);
    expect(b.lost).toEqual([['a1', 1]]);
  });

  it('claims a batch in the due order, a lost row first on a tie, and a row given up takes no room in it', async () => {
    const store = await open();
    const a = worker(store, 'A');
    await insert(store, 'g', T0 - 20);
    await insert(store, 'l', T0 - 10, { createdAt: T0 - 2 });
    expect(await a.batch(2)).toEqual(['g', 'l']);
    // A dies holding g and l; p ties with l, q and z come after
    await insert(store, 'p', T0 - 10, { createdAt: T0 - 2 });
    await insert(store, 'q', T0 - 5);
    await insert(store, 'z', T0 + 1);
    const b = worker(store, 'B');
    b.clock.now = T0 + LEASE_MS;
    expect(await b.batch(3)).toEqual(['g', 'l', 'p']);
    expect(b.lost).toEqual([['g', 1], ['l', 1]]);

    // B dies too: g and l were cut off twice, which is C's limit; p once
    const c = worker(store, 'C', { maxInterruptions: 2 });
    c.clock.now = T0 + 2 * LEASE_MS;
    expect(await c.batch(2)).toEqual(['p', 'q']);
    expect(c.gaveUp).toEqual([
      ['g', 'interrupted 2 times', 2],
      ['l', 'interrupted 2 times', 2],
    ]);
    expect(await row(store, 'z')).toMatchObject({ status: 'pending' });
    expect(await c.batch(5)).toEqual(['z']);
  });
});

describe('retry delay', () => {
  it('grows the interval by the backoff, up to the cap', async () => {
    const policy = { intervalMs: 1000, backoff: 2, maxIntervalMs: 60_000 };
    expect([1, 2, 3, 10].map((n) => retryDelay(policy, n))).toEqual([1000, 2000, 4000, 60_000]);
    expect([1, 5].map((n) => retryDelay({ intervalMs: 300 }, n))).toEqual([300, 300]);
    expect(retryDelay({ intervalMs: 0, backoff: 2 }, 5000)).toBe(0);
  });

  it("waits at least the other side's Retry-After, but no longer than its own limit", async () => {
    const policy = { intervalMs: 1000, backoff: 2 };
    expect(retryWait(policy, 2, undefined, 10_000)).toBe(2000);
    expect(retryWait(policy, 2, 1500, 10_000)).toBe(2000);
    expect(retryWait(policy, 2, 5000, 10_000)).toBe(5000);
    expect(retryWait(policy, 2, 3_600_000, 10_000)).toBe(10_000);
  });
});
