import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { smsProviderSchema } from '../../src/app/config-schema.js';
import { retryDelay } from '../../src/queue/leased-table.js';
import { querySmsHistory } from '../../src/sms/history.js';
import { Outbox, type SettledMessage } from '../../src/sms/outbox.js';
import { createTwilioProvider, twilioProviderSchema } from '../../src/sms/twilio-provider.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { startTwilio, twilio429, twilio500, twilioError, twilioHang, type TwilioStandIn } from '../standins/twilio.js';

const TO = '+48601234567';
const FROM = '+15005550006';

let tw: TwilioStandIn;
let st: Store;
const cleanups: Array<() => unknown> = [];

beforeEach(async () => {
  tw = await startTwilio();
  st = openStore('sqlite::memory:');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  st.close();
  await tw.close();
});

function config(over: Record<string, unknown> = {}) {
  return twilioProviderSchema.parse({
    kind: 'twilio',
    accountSid: tw.accountSid,
    authToken: tw.authToken,
    from: FROM,
    baseUrl: tw.url,
    timeout: '1s',
    retry: { count: 3, interval: '100ms', backoff: 2 },
    ...over,
  });
}

function outbox(over: Record<string, unknown> = {}): Outbox {
  const o = new Outbox({ store: st, providers: { twilio: createTwilioProvider('twilio', config(over)) }, leaseMarginMs: 200 });
  cleanups.push(() => o.stop({ graceMs: 0 }));
  o.start();
  return o;
}

const settled = (o: Outbox) => new Promise<SettledMessage>((resolve) => o.once('settled', resolve));
const send = (o: Outbox, to = TO, sender?: string) =>
  o.accept([{ callId: 'c1', description: 'VIP line reached', provider: 'twilio', to, text: 'Hello {not a field} ż', ...(sender ? { sender } : {}) }]);

describe('the Twilio stand-in follows the documented contract', () => {
  const post = (fields: Record<string, string>, auth = `${tw.accountSid}:${tw.authToken}`, sid = tw.accountSid) =>
    fetch(`${tw.url}/2010-04-01/Accounts/${sid}/Messages.json`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });

  it('answers 201 with a Message resource', async () => {
    const res = await post({ To: TO, From: FROM, Body: 'hi' });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(body).toMatchObject({ account_sid: tw.accountSid, to: TO, from: FROM, body: 'hi', status: 'queued', direction: 'outbound-api', api_version: '2010-04-01', num_segments: '1', error_code: null });
    expect(body.uri).toBe(`/2010-04-01/Accounts/${tw.accountSid}/Messages/${String(body.sid)}.json`);
    expect(String(body.date_created)).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
  });

  const cases: Array<[string, () => Promise<Response>, number, number]> = [
    ['a wrong Auth Token', () => post({ To: TO, From: FROM, Body: 'hi' }, `${'AC' + '0'.repeat(32)}:nope`), 401, 20003],
    ['no To', () => post({ From: FROM, Body: 'hi' }), 400, 21604],
    ['an invalid To', () => post({ To: '+4860', From: FROM, Body: 'hi' }), 400, 21211],
    ['neither From nor MessagingServiceSid', () => post({ To: TO, Body: 'hi' }), 400, 21603],
    ['no Body', () => post({ To: TO, From: FROM }), 400, 21602],
  ];
  for (const [what, call, status, code] of cases) {
    it(`${what}: ${status} with code ${code} in {code, message, more_info, status}`, async () => {
      const res = await call();
      expect(res.status).toBe(status);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({ code, message: expect.any(String), more_info: `https://www.twilio.com/docs/errors/${code}`, status });
      if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
    });
  }

  it('answers 429 with code 20429 when told to', async () => {
    tw.enqueue(twilio429(2));
    const res = await post({ To: TO, From: FROM, Body: 'hi' });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as { code: number }).code).toBe(20429);
  });
});

describe('the Twilio provider through the outbox', () => {
  it('success: form POST with basic auth; the message sid is kept', async () => {
    const o = outbox();
    const done = settled(o);
    await send(o, TO, 'ACME');
    const m = await done;
    expect(m).toMatchObject({ status: 'sent', attempts: 1 });
    expect(tw.delivered).toHaveLength(1);
    const d = tw.delivered[0]!;
    expect(m.providerMessageId).toBe(d.sid);
    // the step's sender wins over the provider's `from`; braces in the text are not merge fields
    expect(d.request.fields).toEqual({ To: TO, From: 'ACME', Body: 'Hello {not a field} ż' });
    expect(d.request.user).toBe(tw.accountSid);
    expect(d.request.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const h = await querySmsHistory(st, {});
    expect(h.entries[0]).toMatchObject({ status: 'sent', providerMessageId: d.sid });
  });

  it("the provider's `from` when the step gives no sender; MessagingServiceSid when configured", async () => {
    const mg = 'MG' + 'a'.repeat(32);
    const o = outbox({ messagingServiceSid: mg });
    const done = settled(o);
    await send(o);
    await done;
    expect(tw.delivered[0]!.request.fields).toMatchObject({ From: FROM, MessagingServiceSid: mg });
  });

  it('429, then success: retried after a growing wait, honouring Retry-After', async () => {
    tw.enqueue(twilio429(), twilio429(1), twilio500);
    const o = outbox();
    const done = settled(o);
    await send(o);
    const m = await done;
    expect(m).toMatchObject({ status: 'sent', attempts: 4 });
    const at = tw.requests.map((r) => r.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(90); // interval 100 ms
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(950); // Retry-After: 1 outranks the 200 ms backoff
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(390); // 100 ms × 2²
    const log = (await querySmsHistory(st, {})).entries[0]!.attemptLog;
    expect(log.map((a) => [a.outcome, a.httpStatus])).toEqual([['retry', 429], ['retry', 429], ['retry', 500], ['ok', 201]]);
    expect(log[0]!.reason).toBe('http-429 code 20429');
    expect(tw.delivered).toHaveLength(1);
  });

  it('the code 20429 is retried even when it comes with another status', async () => {
    tw.enqueue(twilioError(403, 20429, 'Too Many Requests'));
    const o = outbox();
    const done = settled(o);
    await send(o);
    expect(await done).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('400 is final: an invalid To is tried once and failed with the code', async () => {
    const o = outbox();
    const done = settled(o);
    await send(o, '+4860');
    const m = await done;
    expect(m).toMatchObject({ status: 'failed', attempts: 1, reason: 'http-400 code 21211' });
    await new Promise((r) => setTimeout(r, 300));
    expect(tw.requests).toHaveLength(1);
    const e = (await querySmsHistory(st, { status: 'failed' })).entries[0]!;
    expect(e.lastAnswer!.body).toContain('21211');
  });

  it('wrong credentials are final too (401, 20003)', async () => {
    const o = outbox({ authToken: 'wrong' });
    const done = settled(o);
    await send(o);
    expect(await done).toMatchObject({ status: 'failed', attempts: 1, reason: 'http-401 code 20003' });
  });

  it('a timeout is retried', async () => {
    tw.enqueue(twilioHang());
    const o = outbox({ timeout: '300ms' });
    const done = settled(o);
    await send(o);
    expect(await done).toMatchObject({ status: 'sent', attempts: 2 });
    expect((await querySmsHistory(st, {})).entries[0]!.attemptLog[0]!.reason).toBe('timeout');
  });
});

describe('Twilio provider config', () => {
  it('is chosen by kind and needs from or messagingServiceSid', () => {
    const sid = 'AC' + '1'.repeat(32);
    expect(smsProviderSchema.parse({ kind: 'twilio', accountSid: sid, authToken: 't', from: 'ACME' }).kind).toBe('twilio');
    const r = smsProviderSchema.safeParse({ kind: 'twilio', accountSid: sid, authToken: 't' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toMatch(/from .* or messagingServiceSid/);
    expect(smsProviderSchema.safeParse({ kind: 'twilio', accountSid: 'AC123', authToken: 't', from: 'x' }).error!.issues[0]!.path).toEqual(['accountSid']);
  });

  it('defaults to the real API and a retry with backoff', () => {
    const c = twilioProviderSchema.parse({ kind: 'twilio', accountSid: 'AC' + '1'.repeat(32), authToken: 't', from: 'ACME' });
    expect(c.baseUrl).toBe('https://api.twilio.com');
    expect(c.retry).toEqual({ count: 3, interval: 1000, backoff: 2, maxInterval: 60_000 });
    const policy = createTwilioProvider('t', c).retry;
    expect([1, 2, 3, 10].map((n) => retryDelay(policy, n))).toEqual([1000, 2000, 4000, 60_000]);
  });
});
