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
