import { afterEach, describe, expect, it } from 'vitest';
import { startAriServer, type AriServer } from '../helpers/ari-server.js';
import { testCluster, usePostgres } from '../helpers/backends.js';
import { POSTGRES_SKIPPED } from '../helpers/postgres.js';
import { freePort, serviceDir, startService, waitHealthy, type RunningService } from '../helpers/service.js';

/**
 * `call-actions start` while its PostgreSQL is down: the instance waits for it (one log line, then
 * one every 10 s), starts once it answers, and a SIGTERM meanwhile ends it at once with 0. A
 * setting that can never work (a database that does not exist) fails at once instead.
 */

usePostgres();

const USER = 'call-actions';
const PASSWORD = 'ari-pw';
const PG_PASSWORD = 'pg-wait-s3cret';

let ari: AriServer | undefined;
let service: RunningService | undefined;

afterEach(async () => {
  await service?.kill('SIGKILL');
  await ari?.close();
  service = ari = undefined;
  // a test that failed with the cluster stopped must not leave it so for the next one
  try {
    testCluster().start();
  } catch {
    /* already running */
  }
});

function config(port: number, dir: string, store: string, ariUrl: string): string {
  return `asterisk:
  ari: { url: "${ariUrl}", user: ${USER}, password: "\${ARI_PASSWORD}", timeout: 1s }
store: "${store}"
http: { host: 127.0.0.1, port: ${port} }
log: { level: info }
tts: { cacheDir: ${dir}/tts }
stages:
  queue-exit:
    - hangup: {}
`;
}

async function start(store: string): Promise<RunningService> {
  ari = await startAriServer({ user: USER, password: PASSWORD });
  const dir = serviceDir();
  const port = freePort();
  service = await startService({ dir, port, config: config(port, dir, store, ari.url), env: { ARI_PASSWORD: PASSWORD, PG_PASSWORD }, healthy: false });
  return service;
}

const withPassword = (url: string) => url.replace('postgres@', 'postgres:${PG_PASSWORD}@');
const waiting = (l: { msg: string }) => l.msg.includes('not starting until it answers');

describe.skipIf(POSTGRES_SKIPPED)('starting while PostgreSQL is down', () => {
  it('waits, saying why once (not per attempt), and starts once the database answers', async () => {
    const cluster = testCluster();
    const url = await cluster.database();
    cluster.stop();
    const s = await start(withPassword(url));
    const first = await s.waitForLog(waiting, 10_000);
    expect(first.msg).toContain(`PostgreSQL at postgres://postgres:***@127.0.0.1:${cluster.port}/`);
    expect(first.msg).toContain('(ECONNREFUSED)');
    expect(first.level).toBe('warn');
    await new Promise((r) => setTimeout(r, 3_000));
    expect(s.child.exitCode, s.stderr.join('')).toBeNull();
    const lines = await s.settled();
    expect(lines.filter(waiting)).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain(PG_PASSWORD);
    expect(lines.some((l) => l.msg === 'call-actions started')).toBe(false);

    cluster.start();
    await waitHealthy(s.url, 20_000, s.stderr);
    const h = (await (await fetch(`${s.url}/health`)).json()) as { store: unknown };
    expect(h.store).toEqual({ ready: true });
    expect(s.lines.some((l) => l.msg === 'call-actions started')).toBe(true);
  }, 60_000);

  it('SIGTERM during the wait ends it promptly with exit code 0', async () => {
    const cluster = testCluster();
    const url = await cluster.database();
    cluster.stop();
    const s = await start(url);
    await s.waitForLog(waiting, 10_000);
    const asked = Date.now();
    expect(await s.kill('SIGTERM')).toBe(0);
    expect(Date.now() - asked).toBeLessThan(3_000);
    expect(s.lines.some((l) => l.msg === 'stopped while waiting for the store: nothing was started')).toBe(true);
  }, 60_000);

  it('a database that does not exist fails at once with a clear error, no waiting', async () => {
    const cluster = testCluster();
    const url = (await cluster.database()).replace(/\/[^/]+$/, '/no_such_db');
    const s = await start(url);
    const began = Date.now();
    const code = await new Promise<number | null>((resolve) => (s.child.exitCode !== null ? resolve(s.child.exitCode) : s.child.once('exit', resolve)));
    expect(code).toBe(1);
    expect(Date.now() - began).toBeLessThan(10_000);
    const err = s.stderr.join('');
    expect(err).toContain(`call-actions: store: PostgreSQL at postgres://postgres@127.0.0.1:${cluster.port}/no_such_db cannot be used: 3D000 database "no_such_db" does not exist (create the database first)`);
    expect(s.lines.some(waiting)).toBe(false);
  }, 30_000);
});
