import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { baseConfig, freePort, serviceDir, serviceEnv, startService, type LogLine, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { startTextApi, type TextApiStandIn } from '../helpers/text-api.js';
import { startTwilio, twilio429, twilioError, type TwilioStandIn } from '../standins/twilio.js';

/**
 * The SMS element (S1–S11) end to end: real SIP callers (sipp) reach stage "notify" of the real
 * Asterisk (exten 111 once, exten 110 twice in one call), the service runs in its own process,
 * and the SMS go to the Twilio stand-in, which follows Twilio's documented Messages contract.
 */
const CALLER = '+48601234567';
const AGENT_1 = '+48221131415';
const AGENT_2 = '+48221131416';
const CLI = join(REPO_ROOT, 'dist/cli.js');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let tw: TwilioStandIn;
let api: TextApiStandIn;
let service: RunningService | undefined;

interface Entry {
  id: string;
  time: number;
  callId: string;
  description: string;
  recipient: string | null;
  status: string;
  attempts: number;
  reason: string | null;
  note: string | null;
  text: string;
  sender: string | null;
  attemptLog: Array<{ outcome: string; httpStatus: number | null }>;
}

function config(dir: string, port: number, step: string, extra = ''): string {
  return baseConfig(
    dir,
    port,
    `sms:
  providers:
    twilio:
      kind: twilio
      accountSid: "\${TWILIO_SID}"
      authToken: "\${TWILIO_TOKEN}"
      from: "+15005550006"
      baseUrl: ${tw.url}
      timeout: 3s
      retry: { count: 2, interval: 500ms, backoff: 2 }
${extra}
stages:
  notify:
    - sms: ${step}
    - continue: {}
`,
  );
}

async function start(step: string, extra = '', at: { dir?: string; port?: number } = {}): Promise<RunningService> {
  const dir = at.dir ?? serviceDir();
  const port = at.port ?? freePort();
  service = await startService({ dir, port, config: config(dir, port, step, extra), env: { TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken } });
  return service;
}

const call = (exten: '110' | '111', from = CALLER) =>
  runSipp({ scenario: 'call_until_bye', service: exten, from, fromName: 'SMS Caller', timeoutMs: 30_000 });

async function history(s: RunningService, query = ''): Promise<{ total: number; entries: Entry[] }> {
  const res = await fetch(`${s.url}/sms/history${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as never;
}

const perRecipient = (list: ReadonlyArray<{ to: string }>) =>
  list.reduce<Record<string, number>>((acc, m) => ({ ...acc, [m.to]: (acc[m.to] ?? 0) + 1 }), {});

const entered = async (s: RunningService) => (await s.settled()).filter((l) => l.msg === 'stage entered');

beforeAll(async () => {
  tw = await startTwilio();
  api = await startTextApi();
});
afterAll(async () => {
  await tw.close();
  await api.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
});

describe('S6 once per call: a call reaches the SMS element twice', () => {
  for (const [once, perNumber] of [[true, 1], [false, 2]] as const) {
    it(`${once ? 'with' : 'without'} oncePerCall: ${perNumber} SMS per recipient`, async () => {
      const s = await start(`{ description: "Agents", provider: twilio, to: ["${AGENT_1}", "${AGENT_2}"], text: "Call from {caller}", oncePerCall: ${once} }`);
      const before = tw.delivered.length;
      const r = await call('110');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await entered(s)).toHaveLength(2);
      expect(new Set((await entered(s)).map((l) => l.callId)).size).toBe(1); // one call, two visits

      await tw.waitForDelivered(before + 2 * perNumber, 10_000);
      await sleep(1500); // nothing more comes later
      const got = tw.delivered.slice(before);
      expect(perRecipient(got)).toEqual({ [AGENT_1]: perNumber, [AGENT_2]: perNumber });
      expect(got.every((m) => m.body === `Call from ${CALLER}` && m.from === '+15005550006')).toBe(true);
      if (once) expect((await s.settled()).some((l) => l.msg === 'SMS already sent in this call')).toBe(true);

      const h = await history(s, `?callId=${encodeURIComponent(String((await entered(s))[0]!.callId))}`);
      expect(h.total).toBe(2 * perNumber);
      expect(h.entries.every((e) => e.status === 'sent' && e.description === 'Agents')).toBe(true);
    });
  }
});

describe('S3 delay', () => {
  it('5 s: nothing reaches the provider before 5 s, everything after; SIGKILL and restart during the delay still send once', async () => {
    const dir = serviceDir();
    const port = freePort();
    const s = await start(
      `{ description: "Delayed", provider: twilio, sender: ACME, to: ["${AGENT_1}", "${AGENT_2}"], alsoToCaller: true, delay: 5s, text: "Missed call from {caller}" }`,
      '',
      { dir, port },
    );
    const requestsBefore = tw.requests.length;
    const deliveredBefore = tw.delivered.length;
    const r = await call('111');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const reached = (await entered(s))[0]!.time;
    const accepted = await s.waitForLog((l) => l.msg === 'SMS accepted');
    expect(accepted.accepted).toBe(3);
    expect(accepted.time - reached).toBeLessThan(1000); // the call is not held for the delay
    expect(Date.now() - reached).toBeLessThan(4000); // and the caller is already gone

    await sleep(Math.max(0, reached + 2000 - Date.now()));
    expect(await s.kill('SIGKILL')).toBeNull();
    service = undefined;
    expect(tw.requests.length).toBe(requestsBefore);

    const again = await start(
      `{ description: "Delayed", provider: twilio, sender: ACME, to: ["${AGENT_1}", "${AGENT_2}"], alsoToCaller: true, delay: 5s, text: "Missed call from {caller}" }`,
      '',
      { dir, port },
    );
    await tw.waitForDelivered(deliveredBefore + 3, 15_000);
    await sleep(1500);
    const requests = tw.requests.slice(requestsBefore);
    expect(requests).toHaveLength(3);
    for (const q of requests) expect(q.at - reached).toBeGreaterThanOrEqual(5000);
    for (const q of requests) expect(q.at - reached).toBeLessThan(9000);
    const got = tw.delivered.slice(deliveredBefore);
    expect(perRecipient(got)).toEqual({ [AGENT_1]: 1, [AGENT_2]: 1, [CALLER]: 1 });
    expect(got.every((m) => m.from === 'ACME' && m.body === `Missed call from ${CALLER}`)).toBe(true);
    const h = await history(again, '?description=Delayed');
    expect(h.entries.map((e) => [e.status, e.attempts, e.sender])).toEqual([['sent', 1, 'ACME'], ['sent', 1, 'ACME'], ['sent', 1, 'ACME']]);
  });
});

describe("S8 text from the customer's API", () => {
  const step = (fromApi: string) => `{ description: "API text", provider: twilio, to: ["${AGENT_1}"], text: { fromApi: ${fromApi} } }`;

  for (const method of ['GET', 'POST'] as const) {
    it(`${method}: the API sees from_number, to_number, call_id and the custom fields; its text is sent`, async () => {
      api.setBehaviour({ kind: 'json', body: { status: 'ok', data: { sms: `Order 42 ships today (${method})` } } });
      const s = await start(step(`{ url: "${api.url}/sms-text", method: ${method}, timeout: 2s, field: data.sms, fields: { shop: berlin-1, lang: pl } }`));
      const apiBefore = api.requests.length;
      const before = tw.delivered.length;
      const r = await call('111');
      expect(r.code, r.stdout).toBe(0);
      const callId = String((await entered(s))[0]!.callId);

      const seen = api.requests.slice(apiBefore);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.method).toBe(method);
      expect(seen[0]!.path).toBe('/sms-text');
      if (method === 'POST') expect(seen[0]!.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      expect(seen[0]!.fields).toEqual({ from_number: CALLER, to_number: '111', call_id: callId, shop: 'berlin-1', lang: 'pl' });

      await tw.waitForDelivered(before + 1, 10_000);
      await s.waitForLog((l) => l.msg === 'SMS sent'); // the provider answered; now the service has recorded it
      expect(tw.delivered[before]).toMatchObject({ to: AGENT_1, body: `Order 42 ships today (${method})` });
      const h = await history(s, `?callId=${encodeURIComponent(callId)}`);
      expect(h.entries[0]).toMatchObject({ status: 'sent', note: null, text: `Order 42 ships today (${method})` });
    });
  }

  it('times out: the fallback text goes out, the history says why, and the caller waited no longer than the timeout', async () => {
    api.setBehaviour({ kind: 'hang' });
    const s = await start(step(`{ url: "${api.url}/sms-text", method: POST, timeout: 1s, field: data.sms, onError: { text: "Call from {caller}, no text from the CRM" } }`));
    const before = tw.delivered.length;
    const r = await call('111');
    expect(r.code, r.stdout).toBe(0);
    const reached = (await entered(s))[0]!;
    const accepted = await s.waitForLog((l: LogLine) => l.msg === 'SMS accepted');
    expect(accepted.time - reached.time).toBeGreaterThanOrEqual(950);
    expect(accepted.time - reached.time).toBeLessThan(2000);

    await tw.waitForDelivered(before + 1, 10_000);
    await s.waitForLog((l) => l.msg === 'SMS sent');
    expect(tw.delivered[before]).toMatchObject({ to: AGENT_1, body: `Call from ${CALLER}, no text from the CRM` });
    const h = await history(s, `?callId=${encodeURIComponent(String(reached.callId))}`);
    expect(h.entries[0]).toMatchObject({ status: 'sent', note: 'text API failed (timeout after 1000 ms): fallback text used' });
  });

  it('times out with onError: skip: no SMS, recorded as skipped with the reason', async () => {
    api.setBehaviour({ kind: 'hang' });
    const s = await start(step(`{ url: "${api.url}/sms-text", timeout: 1s, field: message, onError: skip }`));
    const requestsBefore = tw.requests.length;
    const r = await call('111');
    expect(r.code, r.stdout).toBe(0);
    await s.waitForLog((l) => l.msg === 'SMS skipped: the text API failed');
    await sleep(500);
    expect(tw.requests.length).toBe(requestsBefore);
    const h = await history(s, '?status=skipped');
    expect(h.total).toBe(1);
    expect(h.entries[0]).toMatchObject({ recipient: AGENT_1, description: 'API text', reason: 'text API failed (timeout after 1000 ms): skipped as configured' });
  });
});

describe('S10 Twilio, on real calls', () => {
  it('429 then success is retried and sent; a 400 is final after one attempt', async () => {
    const s = await start(`{ description: "Twilio", provider: twilio, to: ["${AGENT_1}"], text: "Hello" }`);
    tw.enqueue(twilio429());
    let r = await call('111');
    expect(r.code).toBe(0);
    await s.waitForLog((l) => l.msg === 'SMS sent', 10_000);
    tw.enqueue(twilioError(400, 21610, 'Attempt to send to unsubscribed recipient'));
    r = await call('111');
    expect(r.code).toBe(0);
    await s.waitForLog((l) => l.msg === 'SMS failed', 10_000);
    const h = await history(s, '?description=Twilio');
    const [second, first] = h.entries;
    expect(first).toMatchObject({ status: 'sent', attempts: 2 });
    expect(first!.attemptLog.map((a) => [a.outcome, a.httpStatus])).toEqual([['retry', 429], ['ok', 201]]);
    expect(second).toMatchObject({ status: 'failed', attempts: 1, reason: 'http-400 code 21610' });
  });
});

describe('S11 rate limit', () => {
  it('the 4th SMS to one number within the window is blocked and recorded', async () => {
    const s = await start(`{ description: "Limited", provider: twilio, to: ["${AGENT_1}"], text: "Call from {caller}" }`, '  limits: { perRecipient: { max: 3, window: 1h } }');
    const before = tw.delivered.length;
    for (let i = 0; i < 4; i++) expect((await call('111')).code).toBe(0);
    await tw.waitForDelivered(before + 3, 10_000);
    await sleep(1000);
    expect(tw.delivered.length - before).toBe(3);
    const h = await history(s, '?description=Limited');
    expect(h.entries.map((e) => e.status)).toEqual(['blocked', 'sent', 'sent', 'sent']);
    expect(h.entries[0]!.reason).toBe('blocked by sms.limits.perRecipient: 3 SMS to this number within 1h (max 3)');
    expect(h.entries[0]!.callId).toBe((await entered(s))[3]!.callId);
    expect((await s.settled()).some((l) => l.msg === 'SMS blocked by a limit')).toBe(true);
  });
});

describe('S4/S5 recipients', () => {
  it('an invalid recipient in the config: start-up fails naming the file, line and field', async () => {
    const dir = serviceDir();
    const file = join(dir, 'bad.yaml');
    const text = config(dir, freePort(), `{ description: "Agents", provider: twilio, to: "${AGENT_1}, +48 22 113", text: "x" }`);
    writeFileSync(file, text);
    const line = text.split('\n').findIndex((l) => l.includes('+48 22 113')) + 1;
    const err = await run(process.execPath, [CLI, 'start', '--config', file], { env: serviceEnv({ TWILIO_SID: tw.accountSid, TWILIO_TOKEN: tw.authToken }), timeout: 15_000 }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err, 'the service started').toBeDefined();
    expect(err!.code).toBe(2);
    expect(err!.stderr).toContain(`${file}:${line}:`);
    expect(err!.stderr).toMatch(/stages\.notify\[0\]\.sms\.to\[1\]: "\+48 22 113" is not a valid phone number/);
  });

  it('an invalid caller ID: the caller is skipped and recorded, the agents still get their SMS', async () => {
    const s = await start(`{ description: "Also caller", provider: twilio, to: ["${AGENT_1}"], alsoToCaller: true, text: "Call from {caller}" }`);
    const before = tw.delivered.length;
    const r = await call('111', '12345');
    expect(r.code).toBe(0);
    await tw.waitForDelivered(before + 1, 10_000);
    await sleep(500);
    expect(tw.delivered.slice(before).map((m) => m.to)).toEqual([AGENT_1]);
    const h = await history(s, '?status=skipped');
    expect(h.total).toBe(1);
    expect(h.entries[0]).toMatchObject({ recipient: '12345', reason: 'caller ID "12345" is not a valid phone number' });
  });
});

describe('SMS history: HTTP and CLI filters', () => {
  it('by description, number, call id, status and time range, paginated, the same through both', async () => {
    const s = await start(`{ description: "History", provider: twilio, to: ["${AGENT_1}"], alsoToCaller: true, text: "Call from {caller}" }`);
    const before = tw.delivered.length;
    expect((await call('111', CALLER)).code).toBe(0);
    await s.waitForLog((l) => l.msg === 'SMS sent');
    await sleep(1100); // the two calls' rows must be apart in time for the range filters
    expect((await call('111', 'tester')).code).toBe(0);
    await tw.waitForDelivered(before + 3, 10_000);
    await sleep(500);
    const [call1, call2] = (await entered(s)).map((l) => String(l.callId));

    const all = await history(s, '?description=History');
    expect(all.total).toBe(4);
    // newest first; within a call, the accept comes after the caller's skip was recorded
    expect(all.entries.map((e) => [e.callId, e.recipient, e.status])).toEqual([
      [call2, AGENT_1, 'sent'],
      [call2, 'tester', 'skipped'],
      [call1, CALLER, 'sent'],
      [call1, AGENT_1, 'sent'],
    ]);

    // the number as people write it finds the E.164 rows
    expect((await history(s, `?recipient=${encodeURIComponent('+48 22 113 14 15')}`)).total).toBe(2);
    expect((await history(s, `?recipient=${encodeURIComponent(CALLER)}&callId=${encodeURIComponent(call1!)}`)).total).toBe(1);
    expect((await history(s, `?callId=${encodeURIComponent(call2!)}`)).total).toBe(2);
    expect((await history(s, '?status=skipped')).entries.map((e) => e.reason)).toEqual(['caller ID "tester" is not a valid phone number']);
    expect((await history(s, '?status=sent&status=skipped')).total).toBe(4);
    expect((await history(s, '?description=Nothing')).total).toBe(0);

    const split = Math.min(...all.entries.filter((e) => e.callId === call2).map((e) => e.time));
    const since = await history(s, `?since=${new Date(split).toISOString()}`);
    expect(since.entries.every((e) => e.callId === call2) && since.total === 2).toBe(true);
    const until = await history(s, `?until=${split}`);
    expect(until.entries.every((e) => e.callId === call1) && until.total === 2).toBe(true);

    const page2 = await history(s, '?description=History&limit=3&offset=3');
    expect(page2.total).toBe(4);
    expect(page2.entries.map((e) => e.id)).toEqual([all.entries[3]!.id]);
    const page1 = await history(s, '?description=History&limit=3');
    expect(page1.entries.map((e) => e.id)).toEqual(all.entries.slice(0, 3).map((e) => e.id));

    for (const bad of ['?status=sentt', '?since=yesterday', '?limit=-1', '?recipent=x', '?number=%2B48221131415']) {
      const res = await fetch(`${s.url}/sms/history${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBeTruthy();
    }

    // The CLI reads the same store through the same filter parser.
    const cli = async (...args: string[]) => {
      const { stdout } = await run(process.execPath, [CLI, 'sms', 'history', '--config', s.configFile, ...args], { env: serviceEnv({ TWILIO_SID: 'AC' + '0'.repeat(32), TWILIO_TOKEN: 't' }) });
      return stdout;
    };
    const json = JSON.parse(await cli('--description', 'History', '--recipient', '0048221131415', '--json')) as { total: number; entries: Entry[] };
    expect(json.total).toBe(2);
    expect(json.entries.map((e) => e.id)).toEqual(all.entries.filter((e) => e.recipient === AGENT_1).map((e) => e.id));
    const byCall = JSON.parse(await cli('--call-id', call1!, '--status', 'sent', '--json')) as { total: number };
    expect(byCall.total).toBe(2);
    const ranged = JSON.parse(await cli('--since', new Date(split).toISOString(), '--status', 'skipped', '--json')) as { entries: Entry[] };
    expect(ranged.entries.map((e) => e.recipient)).toEqual(['tester']);
    const table = await cli('--description', 'History', '--limit', '1', '--offset', '1');
    const lines = table.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(all.entries[1]!.callId);
    expect(lines[1]).toBe('2-2 of 4');
    const bad = await run(process.execPath, [CLI, 'sms', 'history', '--config', s.configFile, '--status', 'sentt'], { env: serviceEnv({ TWILIO_SID: 'AC' + '0'.repeat(32), TWILIO_TOKEN: 't' }) }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toMatch(/--status: unknown sentt/);
  });
});
