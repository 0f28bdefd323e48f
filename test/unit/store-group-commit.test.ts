import { afterEach, describe, expect, it, vi } from 'vitest';
import { groupCommit } from '../../src/store/group-commit.js';
import { openStore, type Store } from '../../src/store/sqlite.js';

let store: Store;
afterEach(() => {
  vi.useRealTimers();
  store?.close();
});

function setup(maxRows = 100) {
  store = openStore('sqlite::memory:', { migrations: [{ id: 't/001', up: 'CREATE TABLE t (v INTEGER NOT NULL)' }] });
  const errors: unknown[] = [];
  const rows = groupCommit<number>(store, (tx, v) => tx.run('INSERT INTO t (v) VALUES (?)', [v]), { maxDelayMs: 100, maxRows, onError: (e) => errors.push(e) });
  // through the port: a read queues behind a group's transaction under way, as any statement does
  const count = async () => (await store.one<{ n: number }>('SELECT COUNT(*) AS n FROM t'))!.n;
  return { rows, count, errors };
}

describe('groupCommit', () => {
  it('writes pushed rows together after the delay, or at once on flush', async () => {
    vi.useFakeTimers();
    const { rows, count } = setup();
    rows.push(1);
    rows.push(2);
    expect(await count()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(await count()).toBe(2);
    rows.push(3);
    await rows.flush();
    expect(await count()).toBe(3);
  });

  it('writes as soon as maxRows are pending', async () => {
    const { rows, count } = setup(3);
    rows.push(1);
    rows.push(2);
    expect(await count()).toBe(0);
    rows.push(3);
    expect(await count()).toBe(3);
  });

  it('reports a group it could not write instead of throwing into the caller', async () => {
    const { rows, errors } = setup();
    rows.push(1);
    await store.close();
    await expect(rows.flush()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it('commits a group without waiting for the disk, and leaves the connection as durable as before', async () => {
    store = openStore('sqlite::memory:', { migrations: [{ id: 't/001', up: 'CREATE TABLE t (v INTEGER NOT NULL)' }] });
    const level = () => store.db.pragma('synchronous', { simple: true });
    const seen: unknown[] = [];
    const rows = groupCommit<number>(
      store,
      async (_tx, v) => {
        seen.push(level());
        if (v === 2) throw new Error('disk full');
      },
      { maxDelayMs: 100, maxRows: 100, onError: () => undefined },
    );
    expect(level()).toBe(2); // FULL, as the store opens it
    rows.push(1);
    await rows.flush();
    rows.push(2);
    await rows.flush();
    expect(seen).toEqual([1, 1]); // NORMAL inside the group's transaction
    expect(level()).toBe(2); // FULL again, also after a failed group
  });
});
