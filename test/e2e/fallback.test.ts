import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmiLog, type AmiEvent } from '../helpers/ami-log.js';
import { readAsteriskEnv, type AsteriskEnv } from '../helpers/asterisk.js';
import { runSipp } from '../helpers/sipp.js';

// The service is NOT running here. A caller who presses # in the queue must not meet dead air:
// the dialplan notices that Stasis failed, says so on AMI and puts the caller back into the queue.
// AMI is read through a bare socket so that this test depends on Asterisk alone, not on src/.

async function ariApplications(env: AsteriskEnv): Promise<string[]> {
  const auth = Buffer.from(`${env.ariUser}:${env.ariPass}`).toString('base64');
  const res = await fetch(`${env.ariUrl}/ari/applications`, {
    headers: { authorization: `Basic ${auth}` },
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
  const apps = (await res.json()) as Array<{ name: string }>;
  return apps.map((a) => a.name);
}

describe.skipIf(process.env.CALL_ACTIONS_NO_ASTERISK === '1')('queue exit while the service is down', () => {
  let env: AsteriskEnv;
  let ami: AmiLog;

  beforeAll(async () => {
    env = readAsteriskEnv();
    // another test file may just have stopped its service; give Asterisk a moment to drop the app
    const deadline = Date.now() + 5_000;
    while ((await ariApplications(env)).includes(env.ariApp)) {
      if (Date.now() > deadline) throw new Error(`ARI app ${env.ariApp} is registered: this test needs the service stopped`);
      await new Promise((r) => setTimeout(r, 200));
    }
    ami = await AmiLog.open();
  });

  afterAll(async () => {
    await ami?.close();
  });

  it('plays an apology and puts the caller back into the queue they left', async () => {
    const caller = `+1555${randomInt(1_000_000, 9_999_999)}`;
    const mine = (e: AmiEvent): boolean => e.calleridnum === caller;

    const sipp = await runSipp({
      scenario: 'queue_pound_stay',
      service: '100',
      from: caller,
      fromName: 'Fallback Test',
      timeoutMs: 30_000,
    });
    // the scenario fails if Asterisk hangs up on the caller before the caller's own BYE
    expect(sipp.code, `sipp output:\n${sipp.stdout.slice(-3000)}\n${sipp.stderr}`).toBe(0);

    const hangup = await ami.waitFor((e) => mine(e) && e.event === 'Hangup', 5_000, `Hangup for ${caller}`);
    const events = ami.events.filter(mine);
    const at = (e: AmiEvent): number => events.indexOf(e);

    const joins = events.filter((e) => e.event === 'QueueCallerJoin');
    expect(joins.map((e) => e.queue)).toEqual(['support', 'support']);

    const leave = events.find((e) => e.event === 'QueueCallerLeave');
    expect(leave?.queue).toBe('support');

    const fallback = events.find((e) => e.event === 'UserEvent' && e.userevent === 'CallActionsFallback');
    expect(fallback, 'CallActionsFallback user event').toBeDefined();
    expect(fallback?.stage).toBe('queue-exit');
    expect(fallback?.queue).toBe('support');

    const [first, second] = joins as [AmiEvent, AmiEvent];
    expect(at(first)).toBeLessThan(at(leave as AmiEvent));
    expect(at(leave as AmiEvent)).toBeLessThan(at(fallback as AmiEvent));
    expect(at(fallback as AmiEvent)).toBeLessThan(at(second));
    // back in line while still connected, at the place they had
    expect(at(second)).toBeLessThan(at(hangup));
    expect(second.position).toBe(first.position);
  });
});
