import { afterAll, beforeAll } from 'vitest';
import type { PortMigration, StorePort } from '../../src/store/port.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openStore } from '../../src/store/sqlite.js';
import { POSTGRES_SKIPPED, startTestCluster, type TestCluster } from './postgres.js';

/**
 * The store tests run once per backend: `describe.each(BACKENDS)`. SQLite always; PostgreSQL on a
 * cluster of the tests' own (test/helpers/postgres.ts), started once per test file, unless
 * CALL_ACTIONS_NO_POSTGRES=1. `shared()` opens another store on the same database, as a second
 * instance (or a second worker) would.
 */

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A store on a fresh, empty database; `file` is for SQLite (a path in a temp folder). */
  fresh(file: string, migrations?: readonly PortMigration[]): Promise<{ store: StorePort; shared(): Promise<StorePort> }>;
}

let cluster: TestCluster | undefined;
let starting: Promise<TestCluster> | undefined;

/** Registers the cluster's start and teardown for this test file (call at its top level). */
export function usePostgres(): void {
  if (POSTGRES_SKIPPED) return;
  beforeAll(async () => {
    starting ??= startTestCluster();
    cluster = await starting;
  }, 300_000);
  afterAll(() => {
    cluster?.destroy();
    cluster = undefined;
    starting = undefined;
  });
}

export function testCluster(): TestCluster {
  if (!cluster) throw new Error('usePostgres() was not called, or the cluster did not start');
  return cluster;
}

const sqlite: Backend = {
  name: 'sqlite',
  async fresh(file, migrations) {
    const url = `sqlite:${file}`;
    const store = openStore(url, { migrations });
    return { store, shared: async () => openStore(url, { migrations }) };
  },
};

const postgres: Backend = {
  name: 'postgres',
  async fresh(_file, migrations) {
    const url = await testCluster().database();
    const store = await openPostgresStore(url, { migrations, pool: 4 });
    return { store, shared: () => openPostgresStore(url, { migrations, pool: 4 }) };
  },
};

export const BACKENDS: Backend[] = POSTGRES_SKIPPED ? [sqlite] : [sqlite, postgres];
