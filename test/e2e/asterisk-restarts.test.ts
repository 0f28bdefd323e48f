import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartAsterisk, startAsterisk } from '../helpers/asterisk.js';
import { startWithConfig, waitHealthy, type RunningService } from '../helpers/service.js';
import { runSipp, type SippResult } from '../helpers/sipp.js';

/**
 * Asterisk restarted again and again under load, some restarts while calls are in a stage: the
 * service never exits, and every call placed once it is connected again completes through the stage.
 */
const RESTARTS = 20;
const CALLS_PER_S = 5;

let service: RunningService;

beforeAll(async () => {
  // notify (extension 111): answered, the stage speaks a sentence (~1.5 s in Stasis), then the dialplan hangs up
  service = await startWithConfig(`stages:
  notify:
    - say: "Thank you for calling. Please hold."
`);
});

afterAll(async () => {
  await service?.kill('SIGTERM');
  await startAsterisk();
});

interface Placed {
  at: number;
  result: Promise<SippResult>;
}

describe('Asterisk restarts at random moments under load', () => {
  it(`${RESTARTS} restarts 0-3 s apart at ${CALLS_PER_S} calls/s: the service stays up, calls after the last one complete`, async () => {
    const placed: Placed[] = [];
    let n = 0;
    const load = setInterval(() => {
      const i = n++;
      // each caller its own SIP port and RTP ports (SIP + 10930, and the next ones), reused after 150 calls
      // (30 s), when even a caller cut off by a restart has timed out
      placed.push({
        at: Date.now(),
        result: runSipp({ scenario: 'call_until_bye', service: '111', from: `+8190${String(10000000 + i)}`, fromName: `Load ${i}`, localPort: 5200 + (i % 150) * 4, timeoutMs: 20_000 }),
      });
    }, 1000 / CALLS_PER_S);
    try {
      for (let r = 0; r < RESTARTS; r++) {
        await new Promise((res) => setTimeout(res, Math.random() * 3000));
        await restartAsterisk();
        expect(service.child.exitCode, `after restart ${r + 1}: ${service.stderr.join('')}`).toBeNull();
      }
      await waitHealthy(service.url, 30_000, service.stderr);
      const connectedAt = Date.now();
      // calls keep coming for 6 s after the service is connected again
      await new Promise((res) => setTimeout(res, 6000));
      clearInterval(load);
      const after = placed.filter((p) => p.at >= connectedAt);
      expect(after.length).toBeGreaterThanOrEqual(6 * CALLS_PER_S - 2);
      const results = await Promise.all(after.map((p) => p.result));
      for (const r of results) expect(r.code, r.stdout.slice(-400) + r.stderr.slice(-400)).toBe(0);
      // each of them went through the stage (the dialplan would have hung up on them too, without it)
      const lines = await service.settled();
      const entered = lines.filter((l) => l.msg === 'stage entered' && l.stage === 'notify' && l.time >= connectedAt);
      expect(entered.length).toBeGreaterThanOrEqual(after.length);
      expect(lines.filter((l) => l.level === 'fatal')).toEqual([]);
      expect(service.child.exitCode).toBeNull();
      await Promise.all(placed.map((p) => p.result));
    } finally {
      clearInterval(load);
    }
  }, 300_000);
});
