import { afterEach, describe, expect, it } from 'vitest';
import { maskUrl, numberPlaceholders } from '../../src/store/port.js';
import { openStore, type Store } from '../../src/store/sqlite.js';

describe('numberPlaceholders (PostgreSQL numbering)', () => {
  it('numbers ? in order and @name once per name', () => {
    expect(numberPlaceholders('SELECT * FROM t WHERE a = ? AND b = ?', [1, 'x'])).toEqual({ text: 'SELECT * FROM t WHERE a = $1 AND b = $2', values: [1, 'x'] });
    expect(numberPlaceholders('UPDATE t SET a = @a, b = @b WHERE a < @a', { a: 1, b: 2, unused: 3 })).toEqual({
      text: 'UPDATE t SET a = $1, b = $2 WHERE a < $1',
      values: [1, 2],
    });
  });

  it('leaves quoted strings, quoted names and comments alone', () => {
    const sql = `SELECT 'it''s @x?', "we@ird?" FROM t -- why? @y\nWHERE a = @a`;
    expect(numberPlaceholders(sql, { a: 5 })).toEqual({ text: `SELECT 'it''s @x?', "we@ird?" FROM t -- why? @y\nWHERE a = $1`, values: [5] });
  });

  it('refuses a missing name, a count that does not match and mixed styles', () => {
    expect(() => numberPlaceholders('SELECT @a', {})).toThrow(/missing parameter @a/);
    expect(() => numberPlaceholders('SELECT ?, ?', [1])).toThrow(/more \? placeholders/);
    expect(() => numberPlaceholders('SELECT ?', [1, 2])).toThrow(/2 parameters given for 1/);
    expect(() => numberPlaceholders('SELECT ?, @a', { a: 1 })).toThrow(/array/);
    expect(() => numberPlaceholders('SELECT ?, @a', [1])).toThrow(/object/);
  });
});

describe('maskUrl', () => {
  it('hides a password and keeps the rest', () => {
    expect(maskUrl('postgres://app:s3cr%40t@db.example:5432/calls?sslmode=require')).toBe('postgres://app:***@db.example:5432/calls?sslmode=require');
    expect(maskUrl('postgresql://app@db/calls')).toBe('postgresql://app@db/calls');
    expect(maskUrl('sqlite:///var/lib/x.db')).toBe('sqlite:///var/lib/x.db');
  });
});

describe('the SQLite store through the port', () => {
  const open: Store[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const store = async () => {
    const s = openStore('sqlite::memory:');
    open.push(s);
    await s.migrate([{ id: 'test/001', up: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', postgres: 'CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)' }]);
    return s;
  };

  it('runs, queries and reads one row, with named and positional parameters', async () => {
    const s = await store();
    expect(await s.run('INSERT INTO t (id, v) VALUES (@id, @v)', { id: 1, v: 'a' })).toEqual({ changes: 1 });
    expect(await s.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'b'])).toEqual({ changes: 1 });
    expect(await s.run('INSERT INTO t (id, v) VALUES (?, ?) ON CONFLICT DO NOTHING', [2, 'c'])).toEqual({ changes: 0 });
    expect(await s.query('SELECT id, v FROM t ORDER BY id')).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ]);
    expect(await s.one('SELECT v FROM t WHERE id = ?', [2])).toEqual({ v: 'b' });
    expect(await s.one('SELECT v FROM t WHERE id = ?', [9])).toBeUndefined();
    expect(await s.one({ sqlite: "SELECT 'lite' AS d", postgres: "SELECT 'pg' AS d" })).toEqual({ d: 'lite' });
  });

  it('commits a transaction that resolves and rolls back one that rejects', async () => {
    const s = await store();
    await s.transaction(async (tx) => {
      await tx.run('INSERT INTO t (id, v) VALUES (1, ?)', ['kept']);
    });
    await expect(
      s.transaction(async (tx) => {
        await tx.run('INSERT INTO t (id, v) VALUES (2, ?)', ['gone']);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await s.query('SELECT v FROM t')).toEqual([{ v: 'kept' }]);
    expect(s.db.inTransaction).toBe(false);
  });

  it('makes statements and other transactions wait while a transaction body awaits', async () => {
    const s = await store();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = s.transaction(
      async (tx) => {
        await tx.run("INSERT INTO t (id, v) VALUES (1, 'first')");
        await gate;
        await tx.run("UPDATE t SET v = 'first, done' WHERE id = 1");
        seen.push('first committed');
      },
      { immediate: true },
    );
    // issued while the first body waits: neither may see its half-done state, nor join it
    const read = s.query<{ v: string }>('SELECT v FROM t').then((rows) => seen.push(`read ${rows.map((r) => r.v).join()}`));
    const second = s.transaction(async (tx) => {
      const row = await tx.one<{ v: string }>('SELECT v FROM t WHERE id = 1');
      seen.push(`second saw ${row?.v}`);
      await tx.run("INSERT INTO t (id, v) VALUES (2, 'second')");
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    release();
    await Promise.all([first, read, second]);
    expect(seen).toEqual(['first committed', 'read first, done', 'second saw first, done']);
    expect(await s.query('SELECT id FROM t ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('a failing statement outside a transaction rejects, and the store goes on', async () => {
    const s = await store();
    await expect(s.run('INSERT INTO nowhere VALUES (1)')).rejects.toThrow(/no such table/);
    await s.transaction(async (tx) => {
      await expect(tx.run('INSERT INTO nowhere VALUES (1)')).rejects.toThrow(/no such table/);
    });
    expect(await s.one('SELECT count(*) AS n FROM t')).toEqual({ n: 0 });
  });

  it('refuses a statement on a transaction that has ended', async () => {
    const s = await store();
    let kept: Parameters<Parameters<Store['transaction']>[0]>[0] | undefined;
    await s.transaction(async (tx) => {
      kept = tx;
    });
    await expect(kept!.run("INSERT INTO t (id, v) VALUES (3, 'late')")).rejects.toThrow(/ended/);
    expect(await s.one('SELECT count(*) AS n FROM t')).toEqual({ n: 0 });
  });
});
