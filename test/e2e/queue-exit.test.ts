import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAsterisk, stopAsterisk } from '../helpers/asterisk.js';
import { aossmsEnv, freePort, serviceDir, startWithConfig, waitHealthy, type LogLine, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { hang, quota300, startAossms, type AossmsStandIn } from '../standins/aossms.js';

/**
 * Q1/Q2/S10 end to end: a real SIP caller waits in queue "support" of the real Asterisk, presses
 * #, and the service (its own process) texts them through a stand-in of the seed 000 provider.
 */
const CALLER = '+819012345678';
const PROMPT = 'We have sent you a text message. Goodbye.';

let provider: AossmsStandIn;
let service: RunningService | undefined;

function sections(retryInterval = '1s'): string {
  return `sms:
  providers:
    aossms:
      kind: http
      url: ${provider.endpoint}
      encoding: form
      body: { token: "\${AOS_TOKEN}", clientId: "\${AOS_CLIENT_ID}", smsCode: "\${AOS_SMS_CODE}", message: "{message}", phoneNumber: "{to}" }
      timeout: 3s
      error: { match: "/300/" }
      retry: { count: 2, interval: ${retryInterval} }
  templates:
    callback: "Sorry to keep you waiting in {queue}. Book a call-back: https://example.com/cb"
stages:
  queue-exit:
    - sms: { description: "Queue # SMS", provider: aossms, to: [caller], template: callback, oncePerCall: true }
    - say: "${PROMPT}"
    - hangup: {}
`;
}

async function start(opts: { dir?: string; port?: number } = {}): Promise<RunningService> {
  service = await startWithConfig(sections(), { ...opts, env: aossmsEnv(provider) });
  return service;
}

async function history(s: RunningService, query = ''): Promise<{ total: number; entries: Array<Record<string, unknown>> }> {
  const res = await fetch(`${s.url}/sms/history${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

const callerPresses = (scenario: string, from = CALLER) =>
  runSipp({ scenario, service: '100', from, fromName: 'Queue Caller', timeoutMs: 40_000 });

beforeAll(async () => {
  provider = await startAossms();
});
afterAll(async () => {
  await provider.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
  provider.enqueue(); // no-op; behaviours are consumed per test
});

describe('a queued SIP caller presses #', () => {
  for (const [how, scenario] of [
    ['RFC 4733 DTMF', 'queue_pound_2833'],
    ['SIP INFO', 'queue_pound_info'],
  ] as const) {
    it(`as ${how}: one SMS to the caller, the confirmation played to the end, then hung up`, async () => {
      const s = await start();
      const before = provider.requests.length;
      const call = await callerPresses(scenario);
      expect(call.code, call.stderr + call.stdout).toBe(0); // sipp got the BYE the service sent

      const requests = provider.requests.slice(before);
      expect(requests).toHaveLength(1);
      const req = requests[0]!;
      expect(req.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      expect(req.fields).toEqual({
        token: provider.credentials.token,
        clientId: provider.credentials.clientId,
        smsCode: provider.credentials.smsCode,
        message: 'Sorry to keep you waiting in support. Book a call-back: https://example.com/cb',
        phoneNumber: CALLER,
      });

      const played = await s.waitForLog((l) => l.msg === 'prompt played');
      expect(played.outcome).toBe('done');
      const entered = (await s.settled()).find((l) => l.msg === 'stage entered')!;
      const hungUp = await s.waitForLog((l) => l.msg === 'hung up');
      // the espeak prompt is ~3 s; a prompt cut short would end the stage much sooner
      expect(hungUp.time - entered.time).toBeGreaterThan(2000);

      const h = await history(s, `?callId=${encodeURIComponent(String(entered.callId))}`);
      expect(h.total).toBe(1);
      expect(h.entries[0]).toMatchObject({ status: 'sent', recipient: CALLER, description: 'Queue # SMS', provider: 'aossms', attempts: 1 });

      // one JSON line per event, each about this call carrying its id; no secret, no whole number
      const text = JSON.stringify((await s.settled()));
      expect(s.stderr.join('')).toBe('');
      expect(text).not.toContain(provider.credentials.token);
      expect(text).not.toContain(CALLER);
      expect(text).toContain(CALLER.slice(0, 5));
      const aboutCall = (await s.settled()).filter((l) => l.channel !== undefined || l.smsId !== undefined);
      expect(aboutCall.length).toBeGreaterThanOrEqual(4);
      for (const l of aboutCall) expect(l.callId).toBe(entered.callId);
    });
  }

  it('provider answers 300 (quota): retried twice at the interval, then failed with every attempt recorded', async () => {
    provider.enqueue(quota300, quota300, quota300);
    const s = await start();
    const before = provider.requests.length;
    const call = await callerPresses('queue_pound_2833');
    expect(call.code).toBe(0);
    const failed = await s.waitForLog((l) => l.msg.includes('SMS failed') || (l.msg.includes('SMS') && l.status === 'failed'), 15_000);
    expect(failed).toBeTruthy();
    const requests = provider.requests.slice(before);
    expect(requests).toHaveLength(3);
    const gaps = [requests[1]!.at - requests[0]!.at, requests[2]!.at - requests[1]!.at];
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(950);
    const h = await history(s, '?status=failed');
    expect(h.total).toBe(1);
    const entry = h.entries[0] as { attempts: number; attemptLog: Array<{ outcome: string; body: string }> };
    expect(entry.attempts).toBe(3);
    expect(entry.attemptLog.map((a) => a.outcome)).toEqual(['retry', 'retry', 'retry']);
    expect(entry.attemptLog[0]!.body).toContain('300');
  });

  it('the service is SIGKILLed after accepting the SMS and before the provider answered: sent after restart, exactly once', async () => {
    provider.enqueue(hang());
    const dir = serviceDir();
    const port = freePort();
    const s = await start({ dir, port });
    const deliveredBefore = provider.delivered.length;
    const before = provider.requests.length;
    const call = callerPresses('queue_pound_2833');
    await provider.waitForRequests(before + 1, 20_000);
    expect(await s.kill('SIGKILL')).toBeNull();
    service = undefined;
    provider.release(); // the hung request's client is gone: nothing is delivered for it
    expect(provider.delivered.length).toBe(deliveredBefore);

    const again = await start({ dir, port });
    // the caller is still in Stasis, unattended since the kill: the new process picks the call up,
    // runs the stage again (once-per-call keeps it to one SMS) and the caller gets the BYE
    await again.waitForLog((l) => l.msg === 'reconcile: adopting a channel waiting in Stasis', 10_000);
    await again.waitForLog((l) => l.msg === 'SMS sent', 20_000);
    const result = await call;
    expect(result.code, result.stdout).toBe(0);
    expect((await again.settled()).some((l) => l.msg === 'SMS already sent in this call')).toBe(true);
    const delivered = provider.delivered.slice(deliveredBefore);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.phoneNumber).toBe(CALLER);
    // nothing else goes out later either
    await new Promise((r) => setTimeout(r, 1500));
    expect(provider.delivered.length - deliveredBefore).toBe(1);
    const h = await history(again);
    expect(h.total).toBe(1);
    expect(h.entries[0]).toMatchObject({ status: 'sent' });
  });

  it('a withheld caller ID gets no SMS, and the history says why', async () => {
    const s = await start();
    const before = provider.requests.length;
    const call = await callerPresses('queue_pound_2833', 'anonymous');
    expect(call.code).toBe(0);
    await s.waitForLog((l) => l.msg === 'hung up');
    expect(provider.requests.length).toBe(before);
    const h = await history(s, '?status=skipped');
    expect(h.total).toBe(1);
    expect(String(h.entries[0]!.reason)).toMatch(/withheld|anonymous/);
  });
});

describe('Asterisk restarts while the service runs', () => {
  it('the service reconnects by itself and the next call works', async () => {
    const s = await start();
    await stopAsterisk();
    await s.waitForLog((l: LogLine) => l.msg === 'ARI event stream lost', 10_000);
    const down = await fetch(`${s.url}/health`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ ok: false, ari: { ready: false }, ami: { ready: false }, store: { ready: true } });
    await startAsterisk();
    await waitHealthy(s.url, 60_000);
    const before = provider.requests.length;
    const call = await callerPresses('queue_pound_2833');
    expect(call.code, call.stdout).toBe(0);
    expect(provider.requests.length - before).toBe(1);
  });
});
