import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';

const run = promisify(execFile);

/**
 * The short form of `npm run chaos` (bench/chaos.js): 2 minutes of real SIP calls through the
 * queue-# SMS stage and a route stage whose API is slow, garbage or 500 at random, hooks on every
 * event, while the service is SIGKILLed every 20-40 s, Asterisk restarts once and the SMS
 * provider fails 10 % and hangs 2 %. Every check of the run must pass.
 */
const out = mkdtempSync(join(tmpdir(), 'chaos-result-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface ChaosResult {
  ok: boolean;
  checks: Record<string, boolean>;
  calls: { placed: number; endedNormally: number; cutByAsteriskRestart: number; failedOtherwise: number; failedOtherwiseNearAKill: number };
  kills: unknown[];
  asteriskRestarts: unknown[];
  sms: { accepted: number; delivered: number; duplicates: number };
  hooks: { runs: number; unfinished: number };
}

describe('chaos, short form', () => {
  it('2 minutes of calls through kills, an Asterisk restart and a failing SMS provider lose nothing', async () => {
    await run('npm', ['run', 'build:standins'], { cwd: REPO_ROOT });
    const file = join(out, 'chaos.json');
    const r = await run(process.execPath, [join(REPO_ROOT, 'bench/chaos.js'), '--minutes', '2', '--rate', '5', '--asterisk-restarts', '1', '--out', file], {
      cwd: REPO_ROOT,
      maxBuffer: 64 << 20,
      timeout: 420_000,
    }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const result = JSON.parse(readFileSync(file, 'utf8')) as ChaosResult;
    const why = `${r.stdout}\n${r.stderr.slice(-3000)}`;
    // the run did what it says: load, kills, a restart, SMS and hook traffic
    expect(result.calls.placed, why).toBeGreaterThanOrEqual(500);
    expect(result.kills.length, why).toBeGreaterThanOrEqual(2);
    expect(result.asteriskRestarts, why).toHaveLength(1);
    expect(result.sms.accepted, why).toBeGreaterThan(100);
    expect(result.hooks.runs, why).toBeGreaterThan(500);
    for (const [check, passed] of Object.entries(result.checks)) expect(passed, `${check}\n${why}`).toBe(true);
  }, 480_000);
});
