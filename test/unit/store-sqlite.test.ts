import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, sqlitePath, type Migration, type Store } from '../../src/store/sqlite.js';

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'call-actions-store-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});
const track = (s: Store) => (open.push(s), s);

describe('openStore', () => {
  it('creates parent directories and sets the durability pragmas', () => {
    const file = join(dir, 'a', 'b', 'store.db');
    const s = track(openStore(`sqlite:${file}`, { busyTimeoutMs: 1234 }));
    expect(existsSync(file)).toBe(true);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(s.db.pragma('busy_timeout', { simple: true })).toBe(1234);
    expect(s.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(s.kind).toBe('sqlite');
  });

  // The chaos run's RSS grew with the store: better-sqlite3's own page cache is 16 MB. Measured in
  // a process of its own (RSS is per process): reading every row of a 12 MB store keeps at most
  // the bounded cache, not the store.
  it('keeps a bounded page cache, whatever the size of the store', () => {
    const file = join(dir, 'big.db');
    const store = new URL('../../dist/store/sqlite.js', import.meta.url).href;
    const fill = `const { openStore } = await import(${JSON.stringify(store)});
      const s = openStore('sqlite:${file}');
      s.db.exec('CREATE TABLE t (v TEXT)');
      const ins = s.db.prepare('INSERT INTO t VALUES (?)');
      s.db.transaction(() => { for (let i = 0; i < 3000; i++) ins.run(String(i).padEnd(4000, 'x')); })();
      s.close();`;
    execFileSync(process.execPath, ['--input-type=module', '-e', fill]);
    const read = `const { openStore } = await import(${JSON.stringify(store)});
      const s = openStore('sqlite:${file}');
      const rss = () => process.memoryUsage().rss;
      gc(); const before = rss();
      s.db.prepare('SELECT sum(length(v)) n FROM t').get();
      gc(); process.stdout.write(String(rss() - before));`;
    const grewBy = Number(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', read], { encoding: 'utf8' }));
    expect(grewBy / 2 ** 20).toBeLessThan(5);
  });

  it('opens an in-memory database', () => {
    const s = track(openStore('sqlite::memory:'));
    expect(s.db.memory).toBe(true);
    expect(s.ready()).toBe(true);
  });

  it('is not ready once closed, and close is idempotent', () => {
    const s = openStore('sqlite::memory:');
    s.close();
    expect(s.ready()).toBe(false);
    expect(() => s.close()).not.toThrow();
  });

  it('rejects other URLs', () => {
    expect(() => openStore('postgres://db/x')).toThrow(/not supported/);
    expect(sqlitePath('sqlite::memory:')).toBe(':memory:');
    expect(sqlitePath('sqlite:///var/lib/x.db')).toBe('/var/lib/x.db');
  });
});

describe('migrations', () => {
  it('applies each migration once, in order, across reopenings', () => {
    const file = `sqlite:${join(dir, 'm.db')}`;
    const order: string[] = [];
    const list: Migration[] = [
      { id: 'test/001', up: 'CREATE TABLE t (a INTEGER)' },
      { id: 'test/002', up: (db) => (order.push('002'), db.exec('ALTER TABLE t ADD COLUMN b TEXT')) },
    ];
    openStore(file, { migrations: list }).close();
    const again = track(openStore(file, { migrations: list }));
    expect(order).toEqual(['002']);
    expect(again.db.prepare('SELECT name FROM pragma_table_info(?) ORDER BY cid').pluck().all('t')).toEqual(['a', 'b']);

    // A feature module registering its tables later.
    again.migrate([{ id: 'other/001', up: 'CREATE TABLE u (x)' }]);
    again.migrate([{ id: 'other/001', up: 'CREATE TABLE u (x)' }]);
    expect(again.db.prepare('SELECT id FROM schema_migrations ORDER BY rowid').pluck().all()).toEqual([
      'test/001',
      'test/002',
      'other/001',
    ]);
  });

  it('rolls a failing migration back entirely and does not record it', () => {
    const s = track(openStore('sqlite::memory:'));
    expect(() =>
      s.migrate([{ id: 'bad/001', up: 'CREATE TABLE v (a); INSERT INTO nope VALUES (1);' }]),
    ).toThrow(/nope/);
    expect(s.db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'v'").pluck().get()).toBe(0);
    expect(s.db.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(0);
  });

  it('refuses a list that repeats an id', () => {
    const s = track(openStore('sqlite::memory:'));
    expect(() =>
      s.migrate([
        { id: 'x/1', up: 'CREATE TABLE a (x)' },
        { id: 'x/1', up: 'CREATE TABLE b (x)' },
      ]),
    ).toThrow(/twice/);
  });
});
