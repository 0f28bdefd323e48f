import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { maskUrl, numberPlaceholders, rowsFrom, rowsParam, type Queryable, type StorePort } from '../../src/store/port.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { BACKENDS, testCluster, usePostgres } from '../helpers/backends.js';
import { POSTGRES_SKIPPED } from '../helpers/postgres.js';

usePostgres();

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

const T_MIGRATION = { id: 'test/001', up: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', postgres: 'CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)' };

describe.each(BACKENDS)('the $name store through the port', (backend) => {
  const open: StorePort[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const store = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'call-actions-port-'));
    dirs.push(dir);
    const { store: s, shared } = await backend.fresh(join(dir, 'port.db'), [T_MIGRATION]);
    open.push(s);
    return Object.assign(s, { shared: async () => { const o = await shared(); open.push(o); return o; } });
  };

  it('runs, queries and reads one row, with named and positional parameters; numbers come back as numbers', async () => {
    const s = await store();
    expect(s.kind).toBe(backend.name);
    expect(s.ready()).toBe(true);
    expect(await s.run('INSERT INTO t (id, v) VALUES (@id, @v)', { id: 1, v: 'a' })).toEqual({ changes: 1 });
    expect(await s.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'b'])).toEqual({ changes: 1 });
    expect(await s.run('INSERT INTO t (id, v) VALUES (?, ?) ON CONFLICT DO NOTHING', [2, 'c'])).toEqual({ changes: 0 });
    expect(await s.query('SELECT id, v FROM t ORDER BY id')).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ]);
    expect(await s.one('SELECT v FROM t WHERE id = ?', [2])).toEqual({ v: 'b' });
    expect(await s.one('SELECT v FROM t WHERE id = ?', [9])).toBeUndefined();
    expect(await s.one('SELECT COUNT(*) AS n, SUM(id) AS total, MAX(id) AS top FROM t')).toEqual({ n: 2, total: 3, top: 2 });
    expect(await s.one({ sqlite: "SELECT 'lite' AS d", postgres: "SELECT 'pg' AS d" })).toEqual({ d: backend.name === 'sqlite' ? 'lite' : 'pg' });
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
  });

  it('a failing statement rejects, and the store goes on', async () => {
    const s = await store();
    await expect(s.run('INSERT INTO nowhere VALUES (1)')).rejects.toThrow(/nowhere/);
    await expect(s.transaction((tx) => tx.run('INSERT INTO nowhere VALUES (1)'))).rejects.toThrow(/nowhere/);
    expect(await s.one('SELECT count(*) AS n FROM t')).toEqual({ n: 0 });
    expect(s.ready()).toBe(true);
  });

  it('refuses a statement on a transaction that has ended', async () => {
    const s = await store();
    let kept: Queryable | undefined;
    await s.transaction(async (tx) => {
      kept = tx;
    });
    await expect(kept!.run("INSERT INTO t (id, v) VALUES (3, 'late')")).rejects.toThrow(/ended/);
    expect(await s.one('SELECT count(*) AS n FROM t')).toEqual({ n: 0 });
  });

  it('applies a migration once, also when a second store on the database applies the same list', async () => {
    const s = await store();
    const other = await s.shared();
    const more = [T_MIGRATION, { id: 'test/002', up: 'ALTER TABLE t ADD COLUMN w TEXT', postgres: 'ALTER TABLE t ADD COLUMN w TEXT' }];
    await Promise.all([s.migrate(more), other.migrate(more)]);
    expect(await s.query("SELECT id FROM schema_migrations WHERE id LIKE 'test/%' ORDER BY id")).toEqual([{ id: 'test/001' }, { id: 'test/002' }]);
    await s.run("INSERT INTO t (id, v, w) VALUES (1, 'a', 'b')");
  });

  it('never writes a secret: bound strings are scrubbed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'call-actions-port-'));
    dirs.push(dir);
    const secret = 's3cr3t-t0ken-value';
    const url = backend.name === 'sqlite' ? `sqlite:${join(dir, 'x.db')}` : await testCluster().database();
    const s = backend.name === 'sqlite' ? openStore(url, { secrets: [secret] }) : await openPostgresStore(url, { secrets: [secret] });
    open.push(s);
    await s.migrate([T_MIGRATION]);
    await s.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, `answer: ${secret} and "access_token": "abcdef123456"`]);
    expect(await s.one('SELECT v FROM t')).toEqual({ v: 'answer: [redacted] and "access_token": "[redacted]"' });

    // a batch (rowsFrom): each string is scrubbed before the rows are encoded as one JSON text,
    // where the quotes around a token's field would be escaped and its pattern would not match
    const insert = rowsFrom('rows', 'b', { id: 'bigint', v: 'text' }, (from) => `INSERT INTO t (id, v) SELECT b.id, b.v FROM ${from}`);
    await s.run(insert, { rows: rowsParam([{ id: 2, v: `{"access_token":"abcdef123456","n":1}` }, { id: 3, v: `echo ${secret}` }, { id: 4, v: null }]) });
    expect(await s.query('SELECT id, v FROM t WHERE id > 1 ORDER BY id')).toEqual([
      { id: 2, v: '{"access_token":"[redacted]","n":1}' },
      { id: 3, v: 'echo [redacted]' },
      { id: 4, v: null },
    ]);
  });
});

describe('the SQLite store alone', () => {
  const open: Store[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const store = async () => {
    const s = openStore('sqlite::memory:');
    open.push(s);
    await s.migrate([T_MIGRATION]);
    return s;
  };

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

});

describe.skipIf(POSTGRES_SKIPPED)('the PostgreSQL store alone', () => {
  it('masks the password in its URL, and is not ready while the server is down, ready again once it is back', async () => {
    const cluster = testCluster();
    const url = (await cluster.database()).replace('postgres@', 'postgres:hunter2@');
    const s = await openPostgresStore(url, { pool: 2, connectTimeoutMs: 1_000 });
    try {
      expect(s.url).not.toContain('hunter2');
      expect(s.url).toContain('postgres:***@');
      expect(s.ready()).toBe(true);
      cluster.stop();
      await expect(s.query('SELECT 1')).rejects.toThrow();
      expect(s.ready()).toBe(false);
      cluster.start();
      const until = Date.now() + 15_000;
      while (!s.ready() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(s.ready()).toBe(true);
      expect(await s.one('SELECT 1 AS one')).toEqual({ one: 1 });
    } finally {
      await s.close();
    }
  }, 60_000);

  it('refuses a migration without a PostgreSQL text', async () => {
    const s = await openPostgresStore(await testCluster().database());
    try {
      await expect(s.migrate([{ id: 'test/lite-only', up: 'CREATE TABLE x (a INTEGER)' }])).rejects.toThrow(/no PostgreSQL text/);
    } finally {
      await s.close();
    }
  });
});
