import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiLog, type AmiEvent } from '../helpers/ami-log.js';
import { startWithConfig, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';

/**
 * A service stopped (SIGTERM) while a caller is in a stage hands the caller back to the dialplan
 * as a failed stage (CALL_ACTIONS_RESULT=error), so the shipped queue-exit context's fallback
 * puts them back into the queue instead of hanging up on them.
 */
let service: RunningService;
let ami: AmiLog;

beforeAll(async () => {
  ami = await AmiLog.open();
  // no drain: the caller is released at once, which is what this test is about (drain: graceful-drain.test.ts)
  service = await startWithConfig(`shutdown: { drain: 0s }
stages:
  queue-exit:
    - say: "Please hold while we prepare your text message. This sentence is long on purpose, so that the caller is still listening when the service is stopped."
`);
});

afterAll(async () => {
  await service?.kill('SIGKILL');
  await ami?.close();
});

describe('graceful stop with a caller in a stage', () => {
  it('SIGTERM: the caller hears the apology and goes back into the queue, the service exits 0', async () => {
    const caller = `+1555${randomInt(1_000_000, 9_999_999)}`;
    const mine = (e: AmiEvent): boolean => e.calleridnum === caller;
    const call = runSipp({ scenario: 'queue_pound_stay', service: '100', from: caller, fromName: 'Stop Test', timeoutMs: 30_000 });
    await service.waitForLog((l) => l.msg === 'stage entered' && l.stage === 'queue-exit', 15_000);
    // into the 6-second prompt: Asterisk carries out a channel's other requests only after its
    // playback, so a hand-back that did not stop the prompt first timed out here
    await new Promise((r) => setTimeout(r, 1500));
    expect(await service.kill('SIGTERM')).toBe(0);
    const sipp = await call;
    // the scenario fails if Asterisk hangs up on the caller before the caller's own BYE
    expect(sipp.code, `sipp output:\n${sipp.stdout.slice(-3000)}\n${sipp.stderr}`).toBe(0);
    await ami.waitFor((e) => mine(e) && e.event === 'Hangup', 5_000, `Hangup for ${caller}`);
    const events = ami.events.filter(mine);
    const fallback = events.find((e) => e.event === 'UserEvent' && e.userevent === 'CallActionsFallback');
    const told = `the service's last lines:\n${service.lines.slice(-10).map((l) => JSON.stringify(l)).join('\n')}\nthe caller's AMI events: ${events.map((e) => e.event).filter((e) => e !== 'VarSet').join(' ')}`;
    expect(fallback?.stage, told).toBe('queue-exit');
    expect(events.filter((e) => e.event === 'QueueCallerJoin').map((e) => e.queue)).toEqual(['support', 'support']);
  }, 60_000);
});
