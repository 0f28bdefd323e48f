import { createHmac } from 'node:crypto';
import pino from 'pino';
import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { AdminAuth } from '../../src/admin/auth.js';
import { listenersOf } from '../../src/app/http-config.js';
import { startHttpServer } from '../../src/app/http-server.js';
import { CallEventTracker } from '../../src/asterisk/call-events.js';
import type { CallEvent } from '../../src/asterisk/call-event-types.js';
import type { FeatureRuntime } from '../../src/calls/feature.js';
import type { StepServices } from '../../src/calls/services.js';
import { parseConfigText } from '../../src/config/load.js';
import { smsFeature } from '../../src/sms/index.js';
import type { HistoryEntry } from '../../src/sms/history.js';
import { createMetrics } from '../../src/metrics.js';
import { openAuditLog } from '../../src/store/audit.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { startAossms, type AossmsStandIn } from '../standins/aossms.js';
import { startTwilio, type TwilioStandIn } from '../standins/twilio.js';

/**
 * Delivery receipts through the service's own HTTP server and the SMS feature as the service
 * builds it: Twilio's status callbacks, signed here with Twilio's official helper library (the
 * `twilio` package, not our code), and a generic provider's receipts.
 */
const TO = '+48601234567';
const RECEIPT_SECRET = 'receipt-secret-0123456789';
const SIGNING_KEY = 'signing-key-0123456789abcdef';

let tw: TwilioStandIn;
let aos: AossmsStandIn;
let store: Store;
let runtime: FeatureRuntime;
let server: { url: string; close(): Promise<void> };
let events: CallEvent[];
let lines: Array<Record<string, unknown>>;
let port = 19_500 + (process.pid % 400);

beforeEach(async () => {
  tw = await startTwilio();
  aos = await startAossms();
  store = openStore('sqlite::memory:');
  port += 1;
  const publicUrl = `http://127.0.0.1:${port}`;
  const { value: config } = parseConfigText(
    `asterisk:
  ari: { user: u, password: p }
http: { host: 127.0.0.1, port: ${port}, publicUrl: "${publicUrl}/" }
sms:
  providers:
    tw:
      kind: twilio
      accountSid: ${tw.accountSid}
      authToken: ${tw.authToken}
      from: "+15005550006"
      baseUrl: ${tw.url}
    aos:
      kind: http
      url: ${aos.endpoint}
      body: { token: "${aos.credentials.token}", clientId: "${aos.credentials.clientId}", smsCode: "${aos.credentials.smsCode}", message: "{message}", phoneNumber: "{to}" }
      receipt:
        id: ref
        status: state
        error: code
        statuses: { DELIVRD: delivered, UNDELIV: undelivered, ACCEPTD: queued }
        secret: { header: X-Receipt-Token, value: ${RECEIPT_SECRET} }
    signed:
      kind: http
      url: ${aos.endpoint}
      body: { token: "${aos.credentials.token}", clientId: "${aos.credentials.clientId}", smsCode: "${aos.credentials.smsCode}", message: "{message}", phoneNumber: "{to}" }
      receipt:
        id: data.messageId
        status: data.status
        signature: { header: X-Signature, key: ${SIGNING_KEY}, prefix: "sha256=" }
stages: {}
`,
    'cfg.yaml',
    rootSchema,
    {},
  );
  lines = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const tracker = new CallEventTracker();
  events = [];
  tracker.on('event', (e) => events.push(e));
  const [listener] = listenersOf(config.http);
  runtime = await smsFeature.create({ config: config as never, store, log, secrets: [], tracker, metrics: createMetrics(), publicUrl: listener!.publicUrl });
  runtime.start?.();
  server = await startHttpServer({
    listener: listener!,
    log,
    media: () => false,
    auth: new AdminAuth([], []),
    audit: openAuditLog(store),
    routes: runtime.routes ?? {},
    actions: runtime.actions ?? {},
    providerRoutes: runtime.providerRoutes,
  });
});
afterEach(async () => {
  await runtime.stop?.();
  await server.close();
  store.close();
  await tw.close();
  await aos.close();
});

const sms = () => (runtime.services as Partial<StepServices>).sms!;

async function sendOne(provider: string): Promise<string> {
  const { ids: [id] } = await sms().accept([{ callId: 'call-7', description: 'Queue # SMS', provider, to: TO, text: 'hello' }]);
  return id!;
}

async function entry(id: string): Promise<HistoryEntry> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${server.url}/sms/history?callId=call-7`);
    const page = (await res.json()) as { entries: HistoryEntry[] };
    const e = page.entries.find((x) => x.id === id);
    if (e && e.status !== 'pending' && e.status !== 'sending') return e;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`message ${id} never settled`);
}

const form = (url: string, fields: Record<string, string>, headers: Record<string, string>) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString() });

describe('Twilio status callbacks', () => {
  it('every send names the receipt URL; a receipt signed as Twilio signs moves the SMS to delivered, once, and is a call event', async () => {
    const id = await sendOne('tw');
    const sent = await entry(id);
    expect(sent).toMatchObject({ status: 'sent', delivery: null, receipts: [] });
    const callbackUrl = `http://127.0.0.1:${port}/sms/receipts/tw`;
    expect(tw.delivered[0]!.request.fields.StatusCallback).toBe(callbackUrl);
    const sid = sent.providerMessageId!;
    expect(sid).toMatch(/^SM[0-9a-f]{32}$/);

    const post = (status: string, extra: Record<string, string> = {}) => {
      const fields = { AccountSid: tw.accountSid, From: '+15005550006', To: TO, MessageSid: sid, SmsSid: sid, MessageStatus: status, SmsStatus: status, ApiVersion: '2010-04-01', ...extra };
      return form(callbackUrl, fields, { 'x-twilio-signature': twilio.getExpectedTwilioSignature(tw.authToken, callbackUrl, fields) });
    };
    expect((await post('sent')).status).toBe(200);
    const before = Date.now();
    expect((await post('delivered')).status).toBe(200);
    // a late "sent" (receipts overtake each other) does not undo "delivered"
    expect((await post('sent')).status).toBe(200);

    const e = await entry(id);
    expect(e.delivery).toMatchObject({ status: 'delivered', errorCode: null });
    expect(e.delivery!.at).toBeGreaterThanOrEqual(before);
    expect(e.receipts.map((r) => [r.status, r.providerStatus])).toEqual([
      ['sent', 'sent'],
      ['delivered', 'delivered'],
      ['sent', 'sent'],
    ]);
    const delivered = events.filter((ev) => ev.kind === 'sms.delivered');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.vars).toMatchObject({ callId: 'call-7', smsId: id, smsTo: TO, smsProvider: 'tw', smsStatus: 'delivered', smsDescription: 'Queue # SMS', event: 'sms.delivered' });
    expect(events.filter((ev) => ev.kind === 'sms.failed')).toHaveLength(0);
  });

  it('undelivered with its error code is an sms.failed event', async () => {
    const id = await sendOne('tw');
    const sid = (await entry(id)).providerMessageId!;
    const url = `http://127.0.0.1:${port}/sms/receipts/tw`;
    const fields = { MessageSid: sid, MessageStatus: 'undelivered', ErrorCode: '30003' };
    expect((await form(url, fields, { 'x-twilio-signature': twilio.getExpectedTwilioSignature(tw.authToken, url, fields) })).status).toBe(200);
    expect((await entry(id)).delivery).toMatchObject({ status: 'undelivered', errorCode: '30003' });
    expect(events.filter((e) => e.kind === 'sms.failed').map((e) => e.vars.smsError)).toEqual(['30003']);
  });

  it('a signature that does not match gets 403 and changes nothing', async () => {
    const id = await sendOne('tw');
    const sid = (await entry(id)).providerMessageId!;
    const url = `http://127.0.0.1:${port}/sms/receipts/tw`;
    const fields = { MessageSid: sid, MessageStatus: 'delivered' };
    // signed with another token; signed for other fields; no signature at all
    const forged = [
      twilio.getExpectedTwilioSignature('not-the-auth-token', url, fields),
      twilio.getExpectedTwilioSignature(tw.authToken, url, { ...fields, MessageStatus: 'failed' }),
      '',
    ];
    for (const sig of forged) {
      const res = await form(url, fields, sig ? { 'x-twilio-signature': sig } : {});
      expect(res.status).toBe(403);
    }
    const e = await entry(id);
    expect(e).toMatchObject({ delivery: null, receipts: [] });
    expect(events.filter((ev) => ev.kind.startsWith('sms.'))).toEqual([]);
    expect(lines.filter((l) => l.msg === 'delivery receipt refused')).toHaveLength(3);
  });
});

describe('a generic provider\'s receipts', () => {
  const url = () => `http://127.0.0.1:${port}/sms/receipts/aos`;

  it('by its own id, its own states mapped; the shared secret is checked', async () => {
    const id = await sendOne('aos');
    await entry(id);
    expect((await form(url(), { ref: id, state: 'DELIVRD' }, { 'x-receipt-token': 'wrong-secret-0123456789' })).status).toBe(403);
    expect((await entry(id)).delivery).toBeNull();
    expect((await form(url(), { ref: id, state: 'ACCEPTD' }, { 'x-receipt-token': RECEIPT_SECRET })).status).toBe(200);
    expect((await entry(id)).delivery).toMatchObject({ status: 'queued' });
    expect((await form(url(), { ref: id, state: 'UNDELIV', code: 'E17' }, { 'x-receipt-token': RECEIPT_SECRET })).status).toBe(200);
    expect((await entry(id)).delivery).toMatchObject({ status: 'undelivered', errorCode: 'E17' });
    expect(events.map((e) => e.kind)).toEqual(['sms.failed']);
  });

  it('an id it never sent gets 404, and the log says so', async () => {
    const res = await form(url(), { ref: 'no-such-message', state: 'DELIVRD' }, { 'x-receipt-token': RECEIPT_SECRET });
    expect(res.status).toBe(404);
    const line = lines.find((l) => l.msg === 'delivery receipt for a message this service did not send');
    expect(line).toMatchObject({ level: 40, provider: 'aos', providerMessageId: 'no-such-message', providerStatus: 'DELIVRD' });
    expect(events).toEqual([]);
  });

  it('a JSON receipt signed with an HMAC of its body', async () => {
    const id = await sendOne('signed');
    await entry(id);
    const body = JSON.stringify({ data: { messageId: id, status: 'delivered' } });
    const sign = (b: string) => 'sha256=' + createHmac('sha256', SIGNING_KEY).update(b).digest('hex');
    const post = (b: string, sig: string) => fetch(`http://127.0.0.1:${port}/sms/receipts/signed`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': sig }, body: b });
    expect((await post(body, sign(body.replace('delivered', 'failed')))).status).toBe(403);
    expect((await entry(id)).delivery).toBeNull();
    expect((await post(body, sign(body))).status).toBe(200);
    expect((await entry(id)).delivery).toMatchObject({ status: 'delivered' });
  });

  it('a provider without receipts has no endpoint, and admin endpoints stay GET only', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/sms/receipts/nope`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/sms/history`, { method: 'POST' })).status).toBe(405);
  });
});
