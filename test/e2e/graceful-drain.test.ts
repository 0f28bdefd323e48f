import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiLog, type AmiEvent } from '../helpers/ami-log.js';
import { startWithConfig, type RunningService } from '../helpers/service.js';
import { runSipp, type SippResult } from '../helpers/sipp.js';

/**
 * SIGTERM drains: the five callers already in a ~10 s `say` hear it to the end and go on in the
 * dialplan as a stage that finished (no CALL_ACTIONS_RESULT=error), a caller arriving meanwhile is
 * refused at once (the dialplan's fallback runs, nobody waits for the drain), and the service
 * exits 0 once the last caller has left — not after the whole `shutdown.drain`.
 */
const SAY =
  'Thank you for calling. Please listen to this whole message, which is long on purpose: it goes on for about ten seconds, ' +
  'so that the service is asked to stop while you are still listening to it, and you should still hear every word of it until the very end.';

let service: RunningService;
let ami: AmiLog;

beforeAll(async () => {
  ami = await AmiLog.open();
  service = await startWithConfig(`shutdown: { drain: 45s }
stages:
  held:
    - say: "${SAY}"
`);
});

afterAll(async () => {
  await service?.kill('SIGKILL');
  await ami?.close();
});

const caller = () => `+1555${randomInt(1_000_000, 9_999_999)}`;
const back = (num: string) => (e: AmiEvent) => e.calleridnum === num && e.event === 'UserEvent' && e.userevent === 'CallActionsTestBack';

describe('drain on SIGTERM', () => {
  it('callers in a stage hear it to the end, a new caller is refused at once, the service exits 0 when they are done', async () => {
    const numbers = Array.from({ length: 5 }, caller);
    const calls: Array<Promise<SippResult>> = numbers.map((from, i) =>
      runSipp({ scenario: 'call_until_bye', service: '130', from, fromName: `Drain ${i}`, localPort: 5600 + i * 4, timeoutMs: 60_000 }),
    );
    const entered = () => service.lines.filter((l) => l.msg === 'stage entered' && l.stage === 'held').length;
    const deadline = Date.now() + 20_000;
    while (entered() < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(entered()).toBe(5);
    // the prompt has begun for everyone (TTS is cached after the first), and lasts ~10 s
    await new Promise((r) => setTimeout(r, 1500));
    const termAt = Date.now();
    const exited = service.kill('SIGTERM');
    await service.waitForLog((l) => l.msg === 'stopping: draining the calls in progress', 5_000);

    // a caller who arrives while the service drains: refused, so the dialplan's fallback runs at once
    const late = caller();
    const lateCall = runSipp({ scenario: 'call_until_bye', service: '130', from: late, fromName: 'Drain late', localPort: 5640, timeoutMs: 30_000 });
    const lateBack = await ami.waitFor(back(late), 8_000, `CallActionsTestBack for ${late}`);
    expect(lateBack.result).toBe('FAILED');
    expect(lateBack.refused).toBe('draining');
    expect(service.child.exitCode, 'still draining when the late caller was refused').toBeNull();

    const code = await exited;
    const exitedAfterMs = Date.now() - termAt;
    expect(code).toBe(0);
    // it waited for the callers (the prompt still had seconds to go), not for the whole 45 s drain
    expect(exitedAfterMs).toBeGreaterThan(3_000);
    expect(exitedAfterMs).toBeLessThan(40_000);

    for (const [i, r] of (await Promise.all(calls)).entries()) expect(r.code, `caller ${i}: ${r.stdout.slice(-2000)}\n${r.stderr}`).toBe(0);
    expect((await lateCall).code).toBe(0);

    const lines = await service.settled();
    const played = lines.filter((l) => l.msg === 'prompt played' && l.stage === 'held');
    expect(played.map((l) => l.outcome)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(lines.some((l) => l.msg === 'drained' && l.left === 0)).toBe(true);
    expect(lines.some((l) => l.msg === 'call-actions stopped')).toBe(true);
    for (const num of numbers) {
      // each came back from its stage as a stage that finished, after the whole prompt
      const ev = await ami.waitFor(back(num), 5_000, `CallActionsTestBack for ${num}`);
      expect(ev).toMatchObject({ result: 'SUCCESS', refused: '', error: '' });
      expect(ami.events.some((e) => e.calleridnum === num && e.event === 'UserEvent' && e.userevent === 'CallActionsFallback')).toBe(false);
    }
  }, 120_000);
});
