import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAossms, type AossmsStandIn } from '../standins/aossms.js';
import { json, xml, type Reply, type RouteApiRequest, type RouteApiStandIn } from '../standins/route-api.js';
import type { AmiEvent, AmiLog } from '../helpers/ami-log.js';
import { placeCall, type CallerPlan } from '../helpers/route-caller.js';
import { expectSpokenBeforeRouting, startRoutingPbx, type RoutingPbx } from '../helpers/routing.js';
import { aossmsEnv, type RunningService } from '../helpers/service.js';

/**
 * R5 on the real PBX: a SIP caller reaches stage t510, the customer's API (a stand-in) answers
 * with each `result` of the seed in turn, and AMI shows where the channel went. Where the answer
 * carries `data`, it is spoken to the end before the call leaves.
 */

let api: RouteApiStandIn;
let sms: AossmsStandIn;
let service: RunningService;
let ami: AmiLog;
let pbx: RoutingPbx | undefined;
let n = 0;

beforeAll(async () => {
  sms = await startAossms();
  ({ api, ami, service } = pbx = await startRoutingPbx(
    (api) => {
      const second = api.endpoint.replace(/\/route$/, '/second');
      return `sms:
  providers:
    aossms:
      kind: http
      url: ${sms.endpoint}
      encoding: form
      body: { token: "\${AOS_TOKEN}", clientId: "\${AOS_CLIENT_ID}", smsCode: "\${AOS_SMS_CODE}", message: "{message}", phoneNumber: "{to}" }
      timeout: 3s
stages:
  t510:
    - route:
        url: ${api.endpoint}
        encoding: json
        language: en
        results: { "7": { voicemail: "101" } }
        fallback: { hangup: {} }
routing:
  announcements:
    closed: { text: "We are closed today. Goodbye.", then: { hangup: {} } }
  menus:
    main: { prompt: "For support press one. For the mailbox press two.", options: { "1": { queue: support }, "2": { voicemail: "101" } }, timeout: 6s, retries: 1 }
  schedules:
    always: { timezone: Pacific/Kiritimati, weekly: { daily: "00:00-24:00" } }
  timeconditions:
    hours: { schedule: always, open: { extension: "102" }, closed: { hangup: {} } }
  sms:
    link: { description: "Routing SMS", provider: aossms, text: "Book a call-back: https://example.com/cb", then: { hangup: {} } }
  integrations:
    second: { url: ${second}, encoding: form, fallback: { hangup: {} } }
destinations:
  queue: { names: [support] }
  extension: { context: test-internal, exten: "{name}" }
  dial: { dialString: "Local/{number}@test-outside", timeout: 20s }
`;
    },
    aossmsEnv(sms),
  ));
});
afterAll(async () => {
  await pbx?.close();
  await sms?.close();
});

interface Placed {
  caller: string;
  linkedId: string;
  callId: string;
  events: () => AmiEvent[];
  call: Awaited<ReturnType<typeof placeCall>>;
}

/** One call to t510 whose API answer is `reply` (or decided per request). */
async function call(reply: Reply | ((r: RouteApiRequest) => Reply), plan: Partial<CallerPlan> = {}): Promise<Placed> {
  const caller = `+90532555${String(++n).padStart(4, '0')}`;
  api.respond = typeof reply === 'function' ? reply : () => reply;
  const placed = placeCall({ service: '510', from: caller, fromName: 'Route Caller', holdMs: 3000, ...plan });
  const linkedId = await ami.linkedIdOf(caller);
  const result = await placed;
  if (result.code !== 0) console.log(JSON.stringify(service.lines.filter((l) => l.callId === linkedId), null, 1), api.requests.slice(-2).map((r) => r.raw.toString()));
  expect(result.code, result.stdout.slice(-1500) + result.stderr).toBe(0);
  const entered = await service.waitForLog((l) => l.msg === 'stage entered' && l.callId === linkedId);
  return { caller, linkedId, callId: String(entered.callId), events: () => ami.ofCall(linkedId), call: result };
}

const when = (e: AmiEvent) => Number(e.receivedAt);
const newexten = (p: Placed, context: string, exten?: string) =>
  p.events().find((e) => e.event === 'Newexten' && e.context === context && (exten === undefined || e.exten === exten));

describe('each destination kind of the seed routes a real SIP call', () => {
  it('queue: data spoken, then the caller joins the queue', async () => {
    // the caller stays on the line until the queue takes them: synthesising and playing the data
    // takes seconds, more on a busy machine, and a caller gone after 3 s never joins
    const p = await call(json({ status: 'success', result: 'queue', redirect: 'support', data: 'Welcome back. Connecting you to support.' }), { holdMs: 12_000 });
    const join = await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'QueueCallerJoin', 5000, 'QueueCallerJoin');
    expect(join.queue).toBe('support');
    await expectSpokenBeforeRouting(service, p.callId, when(join));
  });

  it('extensions: the extension is dialled and the phone shows the caller name the API sent (R6)', async () => {
    const p = await call(json({ status: 'success', result: 'extensions', redirect: '102', data: 'One moment please.', name: 'Ayşe Yılmaz' }));
    const dial = await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'DialBegin', 5000, 'DialBegin');
    expect(dial.dialstring).toBe('102@test-phones');
    expect(newexten(p, 'test-internal', '102')).toBeDefined();
    const phone = await ami.waitFor((e) => e.event === 'UserEvent' && e.userevent === 'RoutingTestPhone' && e.linkedid === p.linkedId, 5000, 'the phone');
    expect(phone.callername).toBe('Ayşe Yılmaz');
    expect(phone.callernum).toBe(p.caller);
    await expectSpokenBeforeRouting(service, p.callId, when(dial));
  });

  it('voicemail: the caller reaches mailbox 101', async () => {
    const p = await call(xml({ status: 'success', result: 'voicemail', redirect: '101', data: 'Please leave a message.' }));
    const vm = newexten(p, 'call-actions-dest', 'vm-101');
    const app = p.events().find((e) => e.event === 'Newexten' && e.application === 'VoiceMail');
    expect(vm).toBeDefined();
    expect(app?.appdata).toBe('101,u');
    // the mailbox exists: VoiceMail() did not fail over to the destination fallback
    expect(newexten(p, 'call-actions-dest', 'failed')).toBeUndefined();
    await expectSpokenBeforeRouting(service, p.callId, when(app!));
  });

  for (const result of ['dial', 'dynamic'] as const) {
    it(`${result}: the outside number is dialled through the configured dial string`, async () => {
      const number = result === 'dial' ? '+902125550101' : '05325550102';
      const p = await call(json({ status: 'success', result, redirect: number, data: 'Transferring your call.' }));
      const dial = await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'DialBegin', 5000, 'DialBegin');
      expect(dial.dialstring).toBe(`${number}@test-outside`);
      await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'DialEnd', 5000, 'DialEnd').then((e) => expect(e.dialstatus).toBe('ANSWER'));
      await expectSpokenBeforeRouting(service, p.callId, when(dial));
    });
  }

  it('announcement: played to the end, then its next destination (hang up)', async () => {
    const p = await call(json({ status: 'success', result: 'announcement', redirect: 'closed' }), { holdMs: 15_000 });
    expect(p.call.hungUpBy).toBe('pbx');
    const played = (await service.settled()).find((l) => l.callId === p.callId && l.msg === 'prompt played' && l.what === 'announcement closed');
    expect(played).toMatchObject({ outcome: 'done' });
    expect(Number(played!.ms)).toBeGreaterThan(1000);
    const hangup = p.events().find((e) => e.event === 'Hangup');
    expect(when(hangup!)).toBeGreaterThanOrEqual(played!.time);
  });

  it('menu: the IVR prompt plays, the caller presses 2 and reaches the mailbox', async () => {
    const p = await call(json({ status: 'success', result: 'menu', redirect: 'main' }), { keys: [{ afterMs: 1500, digits: '2' }], holdMs: 3000 });
    expect(newexten(p, 'call-actions-dest', 'vm-101')).toBeDefined();
    const key = (await service.settled()).find((l) => l.callId === p.callId && l.msg === 'menu key');
    expect(key).toMatchObject({ key: '2', matched: true });
  });

  it('timecondition: inside the schedule, the open destination (extension 102)', async () => {
    const p = await call(json({ status: 'success', result: 'timecondition', redirect: 'hours' }));
    await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'DialBegin', 5000, 'DialBegin').then((e) => expect(e.dialstring).toBe('102@test-phones'));
    expect((await service.settled()).find((l) => l.callId === p.callId && l.msg === 'time condition')).toMatchObject({ open: true });
  });

  it('sms: the caller is texted by the SMS step machinery, then the call goes on (hang up)', async () => {
    const before = sms.delivered.length;
    const p = await call(json({ status: 'success', result: 'sms', redirect: 'link', data: 'We are sending you a text message.' }), { holdMs: 15_000 });
    expect(p.call.hungUpBy).toBe('pbx');
    const deadline = Date.now() + 10_000;
    while (sms.delivered.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(sms.delivered.slice(before)).toMatchObject([{ phoneNumber: p.caller, message: 'Book a call-back: https://example.com/cb' }]);
    const history = (await (await fetch(`${service.url}/sms/history?callId=${encodeURIComponent(p.callId)}`)).json()) as { entries: Array<{ description: string }> };
    expect(history.entries.map((e) => e.description)).toEqual(['Routing SMS']);
    const hangup = p.events().find((e) => e.event === 'Hangup');
    await expectSpokenBeforeRouting(service, p.callId, when(hangup!));
  });

  it('queue fallback: hangup hangs up at once', async () => {
    const p = await call(json({ status: 'success', result: 'hangup', data: 'Goodbye.' }), { holdMs: 15_000 });
    expect(p.call.hungUpBy).toBe('pbx');
    // sipp exits on the BYE; AMI's Hangup event may reach us a moment later
    const hangup = await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'Hangup', 5000, 'Hangup');
    expect(newexten(p, 'call-actions-dest')).toBeUndefined();
    await expectSpokenBeforeRouting(service, p.callId, when(hangup));
  });

  it('interactivemenu: the API is asked again (another integration) with the keys the caller typed', async () => {
    const reply = (r: RouteApiRequest): Reply =>
      r.path === '/second'
        ? json({ status: 'success', result: 'queue', redirect: r.fields.tus_bilgisi === '4729' ? 'support' : 'nosuch' })
        : json({ status: 'success', result: 'interactivemenu', redirect: 'second', data: 'Please enter your customer number, then the hash key.' });
    const before = api.requests.length;
    const p = await call(reply, { keys: [{ afterMs: 1500, digits: '4729#', via: 'info' }], holdMs: 2500 });
    const reqs = api.requests.slice(before);
    expect(reqs.map((r) => [r.path, r.encoding, r.fields.tus_bilgisi])).toEqual([
      ['/route', 'json', ''],
      ['/second', 'form', '4729'],
    ]);
    await ami.waitFor((e) => e.linkedid === p.linkedId && e.event === 'QueueCallerJoin', 5000, 'QueueCallerJoin');
  });

  it('a result that is a configured status code goes to its destination (7 → mailbox 101)', async () => {
    const p = await call(json({ status: 'success', result: '7', redirect: 'ignored', data: 'Your account is on hold.' }));
    const app = p.events().find((e) => e.event === 'Newexten' && e.application === 'VoiceMail');
    expect(app?.appdata).toBe('101,u');
    await expectSpokenBeforeRouting(service, p.callId, when(app!));
  });

  it('every call above is in the routing log with its request, answer and decision', async () => {
    const res = await fetch(`${service.url}/routes/log?limit=100`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { total: number; entries: Array<Record<string, unknown>> };
    expect(page.total).toBeGreaterThanOrEqual(13);
    const decisions = page.entries.map((e) => e.decision);
    for (const d of ['queue:support', 'extension:102', 'voicemail:101', 'dial:+902125550101', 'dial:05325550102', 'announcement:closed', 'menu:main', 'timecondition:hours', 'sms:link', 'hangup', 'interactivemenu:second']) {
      expect(decisions).toContain(d);
    }
    const first = page.entries.find((e) => e.decision === 'extension:102')!;
    expect(first).toMatchObject({ outcome: 'routed', httpStatus: 200, encoding: 'json', method: 'POST', step: 'stages.t510[0].route' });
    expect(String(first.requestBody)).toContain('"aranan_no":"510"');
    expect(String(first.responseBody)).toContain('Ayşe Yılmaz');
    expect(typeof first.latencyMs).toBe('number');
    const bad = await fetch(`${service.url}/routes/log?outcom=timeout`);
    expect(bad.status).toBe(400);
  });
});
