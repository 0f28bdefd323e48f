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
  const insert = store.db.prepare<[number]>('INSERT INTO t (v) VALUES (?)');
  const errors: unknown[] = [];
  const rows = groupCommit<number>(store, (v) => void insert.run(v), { maxDelayMs: 100, maxRows, onError: (e) => errors.push(e) });
  const count = () => (store.db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n;
  return { rows, count, errors };
}

describe('groupCommit', () => {
  it('writes pushed rows together after the delay, or at once on flush', () => {
    vi.useFakeTimers();
    const { rows, count } = setup();
    rows.push(1);
    rows.push(2);
    expect(count()).toBe(0);
    vi.advanceTimersByTime(100);
    expect(count()).toBe(2);
    rows.push(3);
    rows.flush();
    expect(count()).toBe(3);
  });

  it('writes as soon as maxRows are pending', () => {
    const { rows, count } = setup(3);
    rows.push(1);
    rows.push(2);
    expect(count()).toBe(0);
    rows.push(3);
    expect(count()).toBe(3);
  });

  it('reports a group it could not write instead of throwing into the caller', () => {
    const { rows, errors } = setup();
    rows.push(1);
    store.close();
    expect(() => rows.flush()).not.toThrow();
    expect(errors).toHaveLength(1);
  });

  it('commits a group without waiting for the disk, and leaves the connection as durable as before', () => {
    store = openStore('sqlite::memory:', { migrations: [{ id: 't/001', up: 'CREATE TABLE t (v INTEGER NOT NULL)' }] });
    const level = () => store.db.pragma('synchronous', { simple: true });
    const seen: unknown[] = [];
    const rows = groupCommit<number>(store, (v) => {
      seen.push(level());
      if (v === 2) throw new Error('disk full');
    }, { maxDelayMs: 100, maxRows: 100, onError: () => undefined });
    expect(level()).toBe(2); // FULL, as the store opens it
    rows.push(1);
    rows.flush();
    rows.push(2);
    rows.flush();
    expect(seen).toEqual([1, 1]); // NORMAL inside the group's transaction
    expect(level()).toBe(2); // FULL again, also after a failed group
  });
});
