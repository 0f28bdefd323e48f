import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { destinationsSchema, routeSchema, routingSchema } from '../../src/routing/config.js';
import type { RouteConfig } from '../../src/routing/settings.js';
import { createRouteLog, type RouteLog } from '../../src/routing/history.js';
import { RouteRun } from '../../src/routing/router.js';
import { drop, http, json, raw, slow, startRouteApi, xml, type RouteApiStandIn } from '../standins/route-api.js';
import type { NewSms, StepServices } from '../../src/calls/services.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { fakeCall, type Op } from '../helpers/fake-call.js';
import { garbageAnswers } from '../helpers/garbage-answers.js';

/**
 * The route step's logic against a real HTTP stand-in and a recording channel: what it sends,
 * what it asks Asterisk to do (and in which order), and where every failure leads.
 */

let api: RouteApiStandIn;
let store: Store;
let log: RouteLog;
const spoken: Array<{ text: string; language?: string }> = [];
const sent: NewSms[] = [];

beforeAll(async () => {
  api = await startRouteApi();
});
afterAll(async () => {
  await api.close();
});
beforeEach(() => {
  store?.close();
  store = openStore('sqlite::memory:');
  log = createRouteLog(store);
  spoken.length = 0;
  sent.length = 0;
});

const routing = routingSchema.parse({
  maxHops: 4,
  announcements: {
    mesaidisi: { text: 'Mesai saatleri dışındayız.', then: { hangup: {} } },
    info: { sound: 'hello-world' },
  },
  menus: {
    main: { prompt: 'Satış için 1, destek için 2', options: { '1': { queue: 'sales' }, '2': { queue: 'support' } }, timeout: '200ms', retries: 1, fallback: { voicemail: '101' } },
    loop: { prompt: 'again', options: { '1': { menu: 'loop' } }, timeout: '100ms', retries: 0 },
  },
  schedules: {
    // open one minute a day, twelve hours from now: closed whenever this file runs
    never: { timezone: 'UTC', weekly: { daily: closedNowWindow() }, holidays: [] },
    always: { timezone: 'America/Anchorage', weekly: { daily: '00:00-24:00' } },
  },
  timeconditions: { t: { schedule: 'always', open: { queue: 'open' }, closed: { queue: 'closed' } } },
  sms: { callback: { description: 'route SMS', provider: 'p', text: 'Link: https://example.com/{caller}', then: { hangup: {} } } },
  integrations: {},
});
const destinations = destinationsSchema.parse({
  queue: { names: ['support', 'sales', 'open', 'closed', 'vip'] },
  extension: { context: 'test-internal', exten: '{name}', names: ['101', '102'] },
  voicemail: { names: ['101'] },
  dial: { dialString: 'PJSIP/{number}@trunk', timeout: '20s' },
});

function services(): StepServices {
  return {
    tts: {
      async speak(text, o) {
        spoken.push({ text, language: o.language });
        return `sound:tts/${spoken.length}`;
      },
    },
    sms: {
      templates: {},
      async accept(messages) {
        sent.push(...messages);
        return { duplicate: false, ids: messages.map((_, i) => `id${i}`), blocked: [] };
      },
      hasOnce: async () => false,
      recordSkipped: async () => {},
    },
    routing: { routing, destinations, defaultLanguage: 'tr', secrets: ['s3cr3t-token'], log },
  };
}

function cfg(over: Record<string, unknown> = {}): RouteConfig {
  return routeSchema.parse({ url: `${api.endpoint}?token=s3cr3t-token`, fallback: { queue: 'support' }, timeout: '2s', ...over });
}

async function run(route: RouteConfig, opts: Parameters<typeof fakeCall>[0] = {}, during?: (c: ReturnType<typeof fakeCall>) => void) {
  const call = fakeCall(opts);
  const r = new RouteRun(call.session, services(), services().routing!);
  const p = r.integration({ route, where: 'stages.welcome[0].route' });
  during?.(call);
  const result = await p;
  r.flush();
  return { ...call, result, run: r };
}

const continued = (ops: Op[]) => ops.filter((o) => o.op === 'continue').map((o) => (o as Extract<Op, { op: 'continue' }>).target);

describe('the request', () => {
  const CALLER = '&arayan_no=1<x>"ş';
  for (const encoding of ['form', 'query', 'json', 'xml'] as const) {
    it(`${encoding}: the seed's field names, the caller ID one value, extra fields after`, async () => {
      api.respond = () => json({ status: 'success', result: 'hangup' });
      const before = api.requests.length;
      await run(cfg({ encoding, extra: { test: '1234' } }), { caller: CALLER, args: ['did=8503030303', 'pbx=8503030300'], exten: '8503030303' });
      const req = api.requests[before]!;
      expect(req.encoding).toBe(encoding);
      expect(req.method).toBe(encoding === 'query' ? 'GET' : 'POST');
      // query: the fields follow the admin's own query string
      const fields = encoding === 'query' ? Object.fromEntries(Object.entries(req.fields).filter(([k]) => k !== 'token')) : req.fields;
      expect(fields).toEqual({ arayan_no: CALLER, aranan_no: '8503030303', santral_no: '8503030300', arama_id: '1234567.213', tus_bilgisi: '', test: '1234' });
      if (encoding === 'xml') expect(req.xmlRoot).toBe('request');
    });
  }
});

describe('a usable answer', () => {
  it('speaks data in the step\'s language to the end, sets the caller name, then hands the call to the queue', async () => {
    api.respond = () => json({ status: 'success', result: 'queue', redirect: 'vip', data: 'Sayın MEHMET YILMAZ hoş geldiniz', name: 'Mehmet Yılmaz' });
    const { channel, result, session } = await run(cfg());
    expect(result).toBe('handed-off');
    expect(spoken).toEqual([{ text: 'Sayın Mehmet Yılmaz hoş geldiniz', language: 'tr' }]);
    const ops = channel.ops.map((o) => o.op);
    // answered only to speak; the data played to the end before the call left
    expect(ops.indexOf('answer')).toBeLessThan(ops.indexOf('play'));
    expect(channel.ops.find((o) => o.op === 'play')).toMatchObject({ outcome: 'done' });
    expect(ops.indexOf('play')).toBeLessThan(ops.indexOf('continue'));
    expect(channel.ops).toContainEqual({ op: 'setVar', name: 'CALLERID(name)', value: 'Mehmet Yılmaz' });
    // the route's fallback is a queue: the dialplan gets it in case Queue(vip) fails (CA_DEST it names itself)
    expect(channel.ops.filter((o) => o.op === 'setVar' && o.name.startsWith('CA_'))).toEqual([{ op: 'setVar', name: 'CA_DEST_FALLBACK', value: 'call-actions-dest,queue-support,1' }]);
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-vip', priority: 1 }]);
    expect(session.vars.callerName).toBe('Mehmet Yılmaz');
  });

  it('no data, no name, no dialplan fallback: nothing is answered, played or set, one continue', async () => {
    api.respond = () => xml({ status: 'success', result: 'extensions', redirect: '101' });
    const { channel } = await run(cfg({ fallback: { hangup: {} } }));
    expect(channel.ops.filter((o) => o.op !== 'continue')).toEqual([]);
    expect(continued(channel.ops)).toEqual([{ context: 'test-internal', extension: '101', priority: 1 }]);
  });

  it('dial: the dial string and its timeout for the dialplan', async () => {
    api.respond = () => json({ status: 'success', result: 'dynamic', redirect: '+905321234567' });
    const { channel } = await run(cfg());
    expect(channel.ops).toContainEqual({ op: 'setVar', name: 'CA_DIAL', value: 'PJSIP/+905321234567@trunk' });
    expect(channel.ops).toContainEqual({ op: 'setVar', name: 'CA_DIAL_TIMEOUT', value: '20' });
    // the dialplan sees only the dial string: the number is named for it
    expect(channel.ops).toContainEqual({ op: 'setVar', name: 'CA_DEST', value: 'dial:+905321234567' });
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'dial', priority: 1 }]);
  });

  it('a configured status code maps to its destination', async () => {
    api.respond = () => json({ status: 'success', result: '7' });
    const { channel } = await run(cfg({ results: { '7': { extension: '102' } } }));
    expect(continued(channel.ops)).toEqual([{ context: 'test-internal', extension: '102', priority: 1 }]);
  });

  it('announcement then its next destination; sms then hangup; time condition', async () => {
    api.respond = () => json({ status: 'success', result: 'announcement', redirect: 'mesaidisi' });
    let r = await run(cfg());
    expect(spoken.map((s) => s.text)).toEqual(['Mesai saatleri dışındayız.']);
    expect(r.channel.ops.filter((o) => o.op === 'hangup')).toHaveLength(1);

    api.respond = () => json({ status: 'success', result: 'sms', redirect: 'callback' });
    r = await run(cfg(), { caller: '+905321234567' });
    expect(sent).toMatchObject([{ to: '+905321234567', text: 'Link: https://example.com/+905321234567', description: 'route SMS', provider: 'p' }]);
    expect(r.channel.ops.at(-1)).toMatchObject({ op: 'hangup' });

    api.respond = () => json({ status: 'success', result: 'timecondition', redirect: 't' });
    r = await run(cfg());
    expect(continued(r.channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-open', priority: 1 }]);
  });

  it('an announcement without a next destination lets the stage go on', async () => {
    api.respond = () => json({ status: 'success', result: 'announcement', redirect: 'info' });
    const r = await run(cfg());
    expect(r.result).toBe('next');
    expect(r.channel.ops.filter((o) => o.op === 'play')).toMatchObject([{ media: 'sound:hello-world', outcome: 'done' }]);
  });

  it('menu: a key during the prompt stops it and picks the option', async () => {
    api.respond = () => json({ status: 'success', result: 'menu', redirect: 'main' });
    const r = await run(cfg(), {}, (c) => {
      c.channel.playMs = 5000;
      setTimeout(() => c.channel.press('1'), 100);
    });
    expect(r.channel.ops.find((o) => o.op === 'play')).toMatchObject({ outcome: 'cancelled' });
    expect(continued(r.channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-sales', priority: 1 }]);
  });

  it('menu: no key after the retries goes to the menu\'s fallback', async () => {
    api.respond = () => json({ status: 'success', result: 'menu', redirect: 'main' });
    const r = await run(cfg());
    expect(r.channel.ops.filter((o) => o.op === 'play')).toHaveLength(2);
    expect(continued(r.channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'vm-101', priority: 1 }]);
  });

  it('interactivemenu: the caller types new digits and the API is asked again with them', async () => {
    let n = 0;
    api.respond = (req) => {
      n++;
      if (n === 1) return json({ status: 'success', result: 'interactivemenu', data: 'Müşteri numaranızı girin' });
      return json({ status: 'success', result: 'queue', redirect: req.fields.tus_bilgisi === '4711' ? 'vip' : 'support' });
    };
    const before = api.requests.length;
    const r = await run(cfg(), {}, (c) => setTimeout(() => c.channel.press('4711#'), 150));
    expect(api.requests.slice(before).map((q) => q.fields.tus_bilgisi)).toEqual(['', '4711']);
    expect(continued(r.channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-vip', priority: 1 }]);
  });
});

describe('never strand a caller', () => {
  const cases: Array<[string, () => void, string]> = [
    ['status: error', () => (api.respond = () => json({ status: 'error', data: 'Sistem hatası' })), 'status-error'],
    ['HTTP 500', () => (api.respond = () => http(500, 'oops')), 'http-error'],
    ['a dropped connection', () => (api.respond = () => drop), 'transport'],
    ['HTML instead of JSON', () => (api.respond = () => raw('<html>502</html>', 'text/html')), 'malformed'],
    ['an unknown result', () => (api.respond = () => json({ status: 'success', result: 'teleport', redirect: 'x' })), 'unknown-result'],
    ['an unknown queue', () => (api.respond = () => json({ status: 'success', result: 'queue', redirect: 'nosuch' })), 'unknown-destination'],
  ];
  for (const [what, arrange, outcome] of cases) {
    it(`${what} → the fallback, nothing spoken, logged as ${outcome}`, async () => {
      arrange();
      const { channel, session } = await run(cfg());
      expect(spoken).toEqual([]);
      expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
      const page = await log.query({ callId: session.callId });
      expect(page.entries).toMatchObject([{ outcome, decision: 'fallback → queue:support' }]);
    });
  }

  it('a connection refused → fallback', async () => {
    const { channel } = await run(cfg({ url: 'http://127.0.0.1:9/route' }));
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
    expect((await log.query({})).entries[0]).toMatchObject({ outcome: 'connect' });
  });

  it('slower than the timeout: the filler plays while waiting, then the fallback', async () => {
    api.respond = () => slow(1500, json({ status: 'success', result: 'queue', redirect: 'vip' }));
    const t0 = Date.now();
    const { channel, lines } = await run(cfg({ timeout: '600ms', filler: { after: '200ms', prompt: 'Lütfen bekleyin' } }), {}, (c) => (c.channel.playMs = 150));
    expect(Date.now() - t0).toBeLessThan(1400);
    const plays = channel.ops.filter((o) => o.op === 'play');
    // 200 ms of silence, then the 150 ms filler repeated until the 600 ms timeout
    expect(plays.length).toBeGreaterThanOrEqual(2);
    expect(spoken[0]).toEqual({ text: 'Lütfen bekleyin', language: 'tr' });
    expect(lines.filter((l) => l.msg === 'filler played').length).toBe(plays.length);
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
    expect((await log.query({})).entries[0]).toMatchObject({ outcome: 'timeout', filler: true });
  });

  it('faster than the filler threshold: no filler at all', async () => {
    api.respond = () => json({ status: 'success', result: 'hangup' });
    const { channel } = await run(cfg({ filler: { after: '1s', prompt: 'Lütfen bekleyin' } }));
    expect(channel.ops.filter((o) => o.op === 'play' || o.op === 'answer')).toEqual([]);
  });

  it('without a fallback the dialplan takes over (CALL_ACTIONS_RESULT=error)', async () => {
    api.respond = () => http(503);
    const { channel, result } = await run(routeSchema.parse({ url: api.endpoint }));
    // the stage runner hands the call back with CALL_ACTIONS_RESULT=error (test/unit/calls-runner.test.ts)
    expect(result).toBe('fallback');
    expect(channel.ops).toEqual([]);
  });

  it('outside its schedule the API is not asked', async () => {
    const before = api.requests.length;
    const { channel } = await run(cfg({ schedule: 'never' }));
    expect(api.requests.length).toBe(before);
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
    expect((await log.query({})).entries[0]).toMatchObject({ outcome: 'outside-schedule', url: null });
  });

  it('loop guard: an API that always answers interactivemenu is asked at most maxHops+1 times', async () => {
    api.respond = () => json({ status: 'success', result: 'interactivemenu' });
    const before = api.requests.length;
    const { channel } = await run(cfg(), {}, (c) => {
      const t = setInterval(() => c.channel.press('1#'), 20);
      setTimeout(() => clearInterval(t), 1500);
    });
    expect(api.requests.length - before).toBe(routing.maxHops + 1);
    expect(continued(channel.ops)).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
    expect((await log.query({ outcome: ['loop-guard'] })).total).toBe(1);
  });

  it('loop guard: a menu that leads to itself ends in the dialplan fallback when the route\'s fallback is that menu', async () => {
    api.respond = () => json({ status: 'success', result: 'menu', redirect: 'loop' });
    const { channel, result } = await run(cfg({ fallback: { menu: 'loop' } }), {}, (c) => {
      const t = setInterval(() => c.channel.press('1'), 30);
      setTimeout(() => clearInterval(t), 2000);
    });
    expect(result).toBe('fallback');
    expect(channel.ops.filter((o) => o.op === 'continue' || o.op === 'setVar')).toEqual([]);
  });

  it('the caller hanging up while the API is asked cancels the request and routes nowhere', async () => {
    api.respond = () => slow(2000, json({ status: 'success', result: 'queue', redirect: 'vip' }));
    const { channel, result } = await run(cfg(), {}, (c) => setTimeout(() => c.channel.hangUp(), 100));
    expect(result).toBe('handed-off');
    expect(continued(channel.ops)).toEqual([]);
  });

  it('1,200 generated malformed answers over HTTP: the fallback every time, the token never logged', async () => {
    const corpus = garbageAnswers(1200);
    let i = 0;
    api.respond = () => {
      const c = corpus[i]!;
      return raw(c.body, c.contentType, c.status ?? 200);
    };
    const route = cfg();
    for (; i < corpus.length; i++) {
      const { channel } = await run(route);
      expect(continued(channel.ops), corpus[i]!.name).toEqual([{ context: 'call-actions-dest', extension: 'queue-support', priority: 1 }]);
    }
    const all = await log.query({ limit: 500 });
    expect(all.total).toBe(corpus.length);
    expect(all.entries.every((e) => e.outcome !== 'routed' && e.decision === 'fallback → queue:support')).toBe(true);
    expect(JSON.stringify(all)).not.toContain('s3cr3t-token');
    expect(all.entries[0]!.url).toContain('token=[redacted]');
  }, 120_000);
});

function closedNowWindow(): string {
  const at = new Date(Date.now() + 12 * 3600_000);
  const hm = (h: number, m: number) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
  const h = at.getUTCHours();
  const m = Math.min(at.getUTCMinutes(), 58);
  return `${hm(h, m)}-${hm(h, m + 1)}`;
}
