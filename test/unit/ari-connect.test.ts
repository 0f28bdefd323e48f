import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, type TestContext } from 'vitest';
import { ARI_FAILURES, startAriServer, type AriServer } from '../helpers/ari-server.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { freePort, serviceDir, startService, waitHealthy, type RunningService } from '../helpers/service.js';

/**
 * Whatever Asterisk's HTTP server answers while the service connects, the service stays up, says
 * why on /health and in its log, retries, and connects once the server answers like Asterisk.
 * (ari-client used to crash the process from inside swagger-client on any of these answers.)
 */
const PASSWORD = 'not-the-right-one';
const USER = 'call-actions';

function configFor(dir: string, port: number, ariUrl: string, extra = ''): string {
  return `asterisk:
  ari:
    url: "${ariUrl}"
    user: ${USER}
    password: "\${ARI_PASSWORD}"
    timeout: 1s${extra}
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
log: { level: info }
tts: { cacheDir: ${join(dir, 'tts')} }
stages:
  queue-exit:
    - hangup: {}
`;
}

/** line:col of the password's value in configFor() */
const PASSWORD_PLACE = ':5:15';

const expected: Record<string, RegExp> = {
  401: /^Asterisk refused the ARI credentials \(401\)$/,
  403: /^Asterisk refused the ARI credentials \(403\)$/,
  404: /^ARI answered the WebSocket upgrade with 404 Not Found$/,
  500: /^ARI answered the WebSocket upgrade with 500 Internal Server Error$/,
  503: /^ARI answered the WebSocket upgrade with 503 Service Unavailable$/,
  'invalid-json': /^ARI answered the WebSocket upgrade with 200 OK$/,
  truncated: /^ARI answered the WebSocket upgrade with 200 OK$/,
  reset: /ECONNRESET|socket hang up/,
  slow: /handshake has timed out/,
};

/** Ends this test's server and service after it (the tests run concurrently: the context's hook, no afterEach). */
function cleanUp(ctx: TestContext, entry: { server: AriServer; service?: RunningService }): void {
  ctx.onTestFinished(async () => {
    await entry.service?.kill('SIGKILL');
    await entry.server.close();
  });
}

interface HealthBody {
  ok: boolean;
  ari: { ready: boolean; reason?: string; status?: number };
}

async function health(url: string): Promise<{ status: number; body: HealthBody }> {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as HealthBody };
}

describe('ARI answers an error while the service connects', () => {
  for (const failure of ARI_FAILURES) it.concurrent(`${failure}: the service stays up 10 s, says why, then connects`, async (ctx) => {
    const server = await startAriServer({ user: USER, password: PASSWORD, fail: failure });
    const entry: { server: AriServer; service?: RunningService } = { server };
    cleanUp(ctx, entry);
    const dir = serviceDir();
    const port = freePort();
    const service = await startService({ dir, port, config: configFor(dir, port, server.url), env: { ARI_PASSWORD: PASSWORD }, healthy: false });
    entry.service = service;

    // The service must stay up 10 s, counted from its first answer on /health: on a loaded machine
    // starting it can take seconds of its own. The watch then goes on until what is asserted below
    // has happened (a reason on /health, a second upgrade, the log line), up to a bound, so that
    // a slow machine waits longer instead of failing and a service that never gets there still fails.
    const why = expected[String(failure)]!;
    const refused = () => service.lines.filter((l) => l.level === 'error' && String(l.msg).includes('Asterisk refused the ARI credentials'));
    const logged = () =>
      failure === 401 || failure === 403
        ? refused().length > 1
        : service.lines.some((l) => l.level === 'warn' && (why.test(String(l.msg)) || why.test(String(l.err ?? ''))));
    const upgrades = () => server.requests.filter((r) => r.startsWith('UPGRADE /ari/events')).length;
    const reasons = new Set<string>();
    let upSince: number | undefined;
    const seenAll = () => upSince !== undefined && Date.now() - upSince >= 10_000 && reasons.size > 0 && upgrades() > 1 && logged();
    const deadline = Date.now() + 45_000;
    while (!seenAll() && Date.now() < deadline) {
      expect(service.child.exitCode, service.stderr.join('')).toBeNull();
      try {
        const h = await health(service.url);
        upSince ??= Date.now();
        expect(h.status).toBe(503);
        expect(h.body.ari.ready).toBe(false);
        if (h.body.ari.reason && h.body.ari.reason !== 'not connected yet') reasons.add(h.body.ari.reason);
      } catch (e) {
        if (!/fetch failed/.test((e as Error).message)) throw e; // the HTTP listener may not be up yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(upSince, 'the service answered /health').toBeDefined();
    expect(Date.now() - upSince!).toBeGreaterThanOrEqual(10_000);
    expect(service.child.exitCode, service.stderr.join('')).toBeNull();
    expect([...reasons].length, 'health gave a reason').toBeGreaterThan(0);
    for (const r of reasons) expect(r).toMatch(expected[String(failure)]!);
    // it retried: more than one upgrade was asked for
    expect(upgrades()).toBeGreaterThan(1);

    const lines = await service.settled();
    if (failure === 401 || failure === 403) {
      expect(refused().length).toBeGreaterThan(1); // once per backoff step
      expect(refused()[0]!.msg).toBe(`${service.configFile}${PASSWORD_PLACE}: asterisk.ari.password: Asterisk refused the ARI credentials (${failure}); retrying (asterisk.ari.exitOnAuthError stops instead)`);
    } else {
      expect(lines.some((l) => l.level === 'warn' && (why.test(String(l.msg)) || why.test(String(l.err ?? ''))))).toBe(true);
    }
    expect(JSON.stringify(lines)).not.toContain(PASSWORD);

    server.fail = undefined;
    await waitHealthy(service.url, 25_000, service.stderr);
    expect(server.accepted).toBeGreaterThan(0);
    expect((await health(service.url)).body.ari).toEqual({ ready: true });
    expect(await service.kill('SIGTERM')).toBe(0);
  }, 90_000);

  it('with --exit-on-auth-error (or asterisk.ari.exitOnAuthError) a refusal ends the service with exit 2 and the place', async (ctx) => {
    const server = await startAriServer({ user: USER, password: PASSWORD, fail: 401 });
    cleanUp(ctx, { server });
    for (const how of ['flag', 'config'] as const) {
      const dir = serviceDir();
      const port = freePort();
      const file = join(dir, 'config.yaml');
      writeFileSync(file, configFor(dir, port, server.url, how === 'config' ? '\n    exitOnAuthError: true' : ''));
      const args = [join(REPO_ROOT, 'dist/cli.js'), 'start', '--config', file, ...(how === 'flag' ? ['--exit-on-auth-error'] : [])];
      const child = spawn(process.execPath, args, { env: { ...process.env, ARI_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, how).toBe(2);
      expect(stderr.trim(), how).toBe(`${file}${PASSWORD_PLACE}: asterisk.ari.password: Asterisk refused the ARI credentials (401)`);
    }
    // two service starts one after the other: on a loaded machine each can take several seconds
  }, 60_000);
});
