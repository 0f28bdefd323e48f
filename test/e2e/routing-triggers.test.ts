import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, type RouteApiRequest, type RouteApiStandIn } from '../standins/route-api.js';
import { localTime } from '../../src/routing/schedule.js';
import type { AmiLog } from '../helpers/ami-log.js';
import { placeCall } from '../helpers/route-caller.js';
import type { RunningService } from '../helpers/service.js';
import { startRoutingPbx, type RoutingPbx } from '../helpers/routing.js';

/**
 * R1 on the real PBX: routing at call arrival (the call not yet answered), only inside a weekly
 * schedule in a time zone other than the machine's, and after the caller keyed in a customer
 * number (gather → route). Also measures what the service adds to a routed call.
 */

let api: RouteApiStandIn;
let service: RunningService;
let ami: AmiLog;
let pbx: RoutingPbx | undefined;
let n = 0;

// A zone with a quarter-hour offset catches hour-only arithmetic; never the machine's own zone.
const MACHINE_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const ZONE = MACHINE_ZONE === 'Asia/Kathmandu' ? 'America/St_Johns' : 'Asia/Kathmandu';

function hhmm(minutes: number): string {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

beforeAll(async () => {
  ({ api, ami, service } = pbx = await startRoutingPbx(
    (api) => {
      const now = localTime(new Date(), ZONE).minute;
      return `stages:
  t401:
    - route: { url: "${api.endpoint}", fallback: { hangup: {} } }
  t411:
    - route: { url: "${api.endpoint}", schedule: inside, fallback: { extension: "103" } }
  t412:
    - route: { url: "${api.endpoint}", schedule: outside, fallback: { extension: "103" } }
  t520:
    - gather: { prompt: "Please enter your customer number, then the hash key.", maxDigits: 8, terminator: "#", timeout: 5s, retries: 1 }
    - route: { url: "${api.endpoint}", fallback: { hangup: {} } }
  t521:
    - gather: { prompt: "For sales press five.", maxDigits: 1, timeout: 5s }
    - route: { url: "${api.endpoint}", encoding: query, fallback: { hangup: {} } }
routing:
  schedules:
    inside: { timezone: ${ZONE}, weekly: { daily: "${hhmm(now - 60)}-${hhmm(now + 60)}" } }
    outside: { timezone: ${ZONE}, weekly: { daily: "${hhmm(now + 120)}-${hhmm(now + 180)}" } }
destinations:
  extension: { context: test-internal, exten: "{name}" }
`;
    },
  ));
});
afterAll(() => pbx?.close());

async function call(exten: string, respond: (r: RouteApiRequest) => ReturnType<typeof json>, plan: Partial<Parameters<typeof placeCall>[0]> = {}) {
  const caller = `+819055${String(++n).padStart(5, '0')}`;
  api.respond = respond;
  const before = api.requests.length;
  const placed = placeCall({ service: exten, from: caller, holdMs: 3000, ...plan });
  const linkedId = await ami.linkedIdOf(caller);
  const result = await placed;
  expect(result.code, result.stdout.slice(-800)).toBe(0);
  return { caller, linkedId, requests: api.requests.slice(before), result };
}

const dialled = (linkedId: string) => ami.waitFor((e) => e.linkedid === linkedId && e.event === 'DialBegin', 10_000, 'DialBegin');

describe('trigger points', () => {
  it('at call arrival: the API is asked before anyone answers; the destination answers the call', async () => {
    const c = await call('401', () => json({ status: 'success', result: 'extensions', redirect: '103' }));
    expect(c.requests).toHaveLength(1);
    const dial = await dialled(c.linkedId);
    expect(dial.dialstring).toBe('103@test-phones');
    const events = ami.ofCall(c.linkedId);
    const callerChannel = events.find((e) => e.event === 'Newchannel')!.channel;
    const up = events.findIndex((e) => e.event === 'Newstate' && e.channel === callerChannel && e.channelstatedesc === 'Up');
    // the service did not answer: the caller's line went up only when the phone answered the Dial
    expect(up).toBeGreaterThan(events.indexOf(dial));
    expect((await service.settled()).find((l) => l.callId === c.linkedId && l.msg === 'routed')).toMatchObject({ destination: 'extension:103' });
  });

  it(`inside a weekly schedule in ${ZONE} (the machine runs in ${MACHINE_ZONE}): the API decides`, async () => {
    const c = await call('411', () => json({ status: 'success', result: 'queue', redirect: 'support' }));
    expect(c.requests).toHaveLength(1);
    await ami.waitFor((e) => e.linkedid === c.linkedId && e.event === 'QueueCallerJoin', 5000, 'QueueCallerJoin');
  });

  it(`outside it: the API is not asked, the caller goes to the fallback`, async () => {
    const c = await call('412', () => json({ status: 'success', result: 'queue', redirect: 'support' }));
    expect(c.requests).toHaveLength(0);
    expect((await dialled(c.linkedId)).dialstring).toBe('103@test-phones');
    const log = (await (await fetch(`${service.url}/routes/log?callId=${c.linkedId}`)).json()) as { entries: Array<Record<string, unknown>> };
    expect(log.entries).toMatchObject([{ outcome: 'outside-schedule', reason: 'outside schedule outside', url: null, decision: 'fallback → extension:103' }]);
  });

  it('gather → route: the digits the SIP caller types (SIP INFO, during the prompt) go out in tus_bilgisi', async () => {
    const c = await call('520', (r) => json({ status: 'success', result: r.fields.tus_bilgisi === '4711' ? 'queue' : 'hangup', redirect: 'support' }), {
      keys: [{ afterMs: 1200, digits: '4711#', via: 'info' }],
      holdMs: 2500,
    });
    expect(c.requests.map((r) => r.fields.tus_bilgisi)).toEqual(['4711']);
    await ami.waitFor((e) => e.linkedid === c.linkedId && e.event === 'QueueCallerJoin', 5000, 'QueueCallerJoin');
    expect((await service.settled()).find((l) => l.callId === c.linkedId && l.msg === 'gather done')).toMatchObject({ digits: 4, ended: 'terminator' });
  });

  it('gather → route: one key as RFC 4733, after the prompt, sent in a GET query', async () => {
    const c = await call('521', (r) => json({ status: 'success', result: r.fields.tus_bilgisi === '5' ? 'extensions' : 'hangup', redirect: '103' }), {
      keys: [{ afterMs: 2500, digits: '5' }],
      holdMs: 3000,
    });
    expect(c.requests.map((r) => [r.method, r.fields.tus_bilgisi])).toEqual([['GET', '5']]);
    expect((await dialled(c.linkedId)).dialstring).toBe('103@test-phones');
    expect((await service.settled()).find((l) => l.callId === c.linkedId && l.msg === 'gather done')).toMatchObject({ digits: 1, ended: 'max' });
  });
});

describe('routing overhead on a real call', () => {
  it('StasisStart → the channel leaving for its destination, minus the API\'s response time (20 calls)', async () => {
    const rows: Array<{ total: number; api: number; overhead: number; ami: number }> = [];
    for (let i = 0; i < 20; i++) {
      const c = await call('401', () => json({ status: 'success', result: 'extensions', redirect: '103' }), { holdMs: 1000 });
      const routed = await service.waitForLog((l) => l.callId === c.linkedId && l.msg === 'routed');
      // the same span seen from Asterisk's side: entering Stasis → the first dialplan step of the destination
      const events = ami.ofCall(c.linkedId);
      const stasis = events.find((e) => e.event === 'Newexten' && e.application === 'Stasis')!;
      const dest = events.find((e) => e.event === 'Newexten' && e.context === 'test-internal')!;
      rows.push({
        total: Number(routed.sinceStasisStartMs),
        api: Number(routed.apiMs),
        overhead: Number(routed.overheadMs),
        ami: Number(dest.receivedAt) - Number(stasis.receivedAt) - Number(routed.apiMs),
      });
    }
    const sorted = (k: keyof (typeof rows)[number]) => rows.map((r) => r[k]).sort((a, b) => a - b);
    const pct = (k: keyof (typeof rows)[number], p: number) => sorted(k)[Math.min(rows.length - 1, Math.floor((p / 100) * rows.length))]!;
    const summary = {
      calls: rows.length,
      overheadMs: { median: pct('overhead', 50), p90: pct('overhead', 90), max: pct('overhead', 100) },
      viaAmiMs: { median: pct('ami', 50), p90: pct('ami', 90), max: pct('ami', 100) },
      apiMs: { median: pct('api', 50), max: pct('api', 100) },
      totalMs: { median: pct('total', 50), max: pct('total', 100) },
    };
    console.log(`routing overhead: ${JSON.stringify(summary)}`);
    expect(summary.overheadMs.median).toBeLessThan(50);
    expect(summary.viaAmiMs.median).toBeLessThan(60);
  }, 180_000);
});
