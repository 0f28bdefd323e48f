import { describe, expect, it } from 'vitest';
import { storeHealth } from '../../src/app/service.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { testCluster, usePostgres } from '../helpers/backends.js';
import { POSTGRES_SKIPPED } from '../helpers/postgres.js';

/**
 * PostgreSQL going away under an open store: /health names the database (password masked) and
 * the reason, with the time it went down; the log says so once when it goes and once when it is
 * back, however many probes fail in between.
 */

usePostgres();

const PASSWORD = 'pg-outage-s3cret';

function collector() {
  const lines: Array<{ level: 'warn' | 'info'; obj: Record<string, unknown>; msg: string }> = [];
  const log = {
    warn: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', obj, msg }),
    info: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'info', obj, msg }),
  };
  return { lines, log: log as never };
}

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
};

describe.skipIf(POSTGRES_SKIPPED)('PostgreSQL outage', () => {
  it('/health says which database is unreachable and why, since when; one log line down and one back', async () => {
    const cluster = testCluster();
    // the test cluster trusts loopback: the password is only there to be masked
    const url = (await cluster.database()).replace('postgres@', `postgres:${PASSWORD}@`);
    const { lines, log } = collector();
    const store = await openPostgresStore(url, { pool: 2, log });
    try {
      expect(store.outage()).toBeUndefined();
      expect(await storeHealth(store)).toEqual({ ready: true });

      const before = Date.now();
      cluster.stop();
      await expect(store.query('SELECT 1')).rejects.toThrow();
      const health = await storeHealth(store);
      expect(health.ready).toBe(false);
      const where = `PostgreSQL at postgres://postgres:***@127.0.0.1:${cluster.port}/`;
      expect(health.error).toContain(where);
      expect(health.error).toMatch(/is unreachable \(.+\); accepted SMS, hook runs and CRM activities wait until it is back$/);
      expect(Date.parse(health.since!)).toBeGreaterThanOrEqual(before - 1000);
      expect(JSON.stringify(health)).not.toContain(PASSWORD);

      // the probes (once a second) keep failing: the reason is the current one, the log says nothing more
      await new Promise((r) => setTimeout(r, 3_500));
      const still = await storeHealth(store);
      expect(still.error).toContain('(ECONNREFUSED)');
      expect(still.since).toBe(health.since);
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
      expect(lines[0]!.msg).toContain(where);
      expect(JSON.stringify(lines)).not.toContain(PASSWORD);

      cluster.start();
      await until(() => store.ready(), 15_000);
      expect(store.ready()).toBe(true);
      expect(store.outage()).toBeUndefined();
      expect(await storeHealth(store)).toEqual({ ready: true });
      expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
      expect(lines[1]!.msg).toBe('PostgreSQL answers again; the queued work goes on');
      expect(lines[1]!.obj.downMs).toBeGreaterThanOrEqual(3_000);
    } finally {
      await store.close();
    }
  }, 60_000);
});
