import { describe, expect, it } from 'vitest';
import { parseAnswer } from '../../src/routing/answer.js';
import { destinationsSchema, routeSchema, routingSchema } from '../../src/routing/config.js';
import { decide, type DecideContext } from '../../src/routing/decide.js';
import { garbageAnswers } from '../helpers/garbage-answers.js';

const route = routeSchema.parse({
  url: 'http://127.0.0.1:1/route',
  results: { '1': { queue: 'support' }, '2': { extension: '101' } },
  fallback: { voicemail: '101' },
});
const routing = routingSchema.parse({
  announcements: { mesaidisi: { text: 'Mesai saatleri dışındayız.' } },
  menus: { main: { prompt: 'Press 1', options: { '1': { queue: 'support' } } } },
  schedules: { office: { timezone: 'Europe/Istanbul', weekly: { 'mon-fri': '09:00-18:00' } } },
  timeconditions: { mesai: { schedule: 'office', open: { queue: 'support' }, closed: { announcement: 'mesaidisi' } } },
  integrations: { second: { url: 'http://127.0.0.1:1/second' } },
});
const destinations = destinationsSchema.parse({
  queue: { names: ['support'] },
  extension: { context: 'test-internal', exten: '{name}', names: ['101'] },
  voicemail: { names: ['101'] },
  dial: { dialString: 'Local/{number}@test-outside' },
});
const ctx: DecideContext = { route, routing, destinations };

const ok = (body: string, contentType = 'application/json', status = 200) => decide({ kind: 'response', status, headers: { 'content-type': contentType }, body }, ctx);

describe('parseAnswer', () => {
  it('reads the seed\'s JSON example, numbers as text', () => {
    expect(parseAnswer('{ "status": "success", "result": "1", "data": "okunacak metin"}')).toEqual({
      ok: true,
      answer: { status: 'success', result: '1', data: 'okunacak metin' },
    });
    expect(parseAnswer('{"status":"success","result":1,"redirect":101}')).toMatchObject({ ok: true, answer: { result: '1', redirect: '101' } });
  });

  it('reads the same fields from XML, entities and CDATA decoded, whatever the root is called', () => {
    const a = parseAnswer(
      '<?xml version="1.0" encoding="UTF-8"?>\n<yanit><status>success</status><result>extensions</result><redirect>101</redirect><data><![CDATA[Sayın A & B <hoş> geldiniz]]></data><name>Ayşe &amp; Co</name></yanit>',
    );
    expect(a).toEqual({ ok: true, answer: { status: 'success', result: 'extensions', redirect: '101', data: 'Sayın A & B <hoş> geldiniz', callerName: 'Ayşe & Co' } });
  });

  it('takes the caller name from the configured field, or none', () => {
    const body = '{"status":"success","result":"hangup","ad_soyad":"Mehmet Yılmaz","name":"x"}';
    expect(parseAnswer(body, { callerNameField: 'ad_soyad' })).toMatchObject({ answer: { callerName: 'Mehmet Yılmaz' } });
    expect(parseAnswer(body, { callerNameField: false })).toEqual({ ok: true, answer: { status: 'success', result: 'hangup' } });
  });

  it('status is matched without case or surrounding space; anything else is malformed', () => {
    expect(parseAnswer('{"status":" Success ","result":"hangup"}')).toMatchObject({ ok: true, answer: { status: 'success' } });
    expect(parseAnswer('{"status":"ok","result":"hangup"}')).toEqual({ ok: false, reason: 'status "ok" is neither success nor error' });
    expect(parseAnswer('{"result":"hangup"}')).toEqual({ ok: false, reason: 'no status' });
  });

  it('refuses a DOCTYPE outright (no entity expansion, no external entities)', () => {
    const r = parseAnswer('<!DOCTYPE r [<!ENTITY a "x">]><r><status>success</status></r>');
    expect(r).toEqual({ ok: false, reason: 'XML with a DOCTYPE is refused' });
  });
});

describe('decide', () => {
  it('every destination kind of the seed, by result and redirect', () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['queue', 'support', 'queue:support'],
      ['extensions', '101', 'extension:101'],
      ['voicemail', '101', 'voicemail:101'],
      ['dial', '+902121234567', 'dial:+902121234567'],
      ['dynamic', '05321234567', 'dial:05321234567'],
      ['announcement', 'mesaidisi', 'announcement:mesaidisi'],
      ['menu', 'main', 'menu:main'],
      ['timecondition', 'mesai', 'timecondition:mesai'],
      ['interactivemenu', 'second', 'interactivemenu:second'],
      ['interactivemenu', undefined, 'interactivemenu'],
      ['hangup', undefined, 'hangup'],
      ['HANGUP', undefined, 'hangup'],
    ];
    for (const [result, redirect, expected] of cases) {
      const d = ok(JSON.stringify({ status: 'success', result, redirect }));
      expect(d.outcome, `${result} ${redirect}`).toBe('routed');
      const dest = d.destination!;
      const described = 'name' in dest && dest.name !== undefined ? `${dest.kind}:${dest.name}` : dest.kind;
      expect(described).toBe(expected);
    }
  });

  it('a result that is a configured code maps to its destination, whatever the redirect says', () => {
    const d = ok('{"status":"success","result":"2","redirect":"ignored"}');
    expect(d).toMatchObject({ outcome: 'routed', mapped: true, destination: { kind: 'extension', name: '101' } });
  });

  it('status: error, HTTP errors and transport failures go to the fallback', () => {
    expect(ok('{"status":"error","result":"queue","redirect":"support"}').outcome).toBe('status-error');
    expect(ok('{"status":"success","result":"queue","redirect":"support"}', 'application/json', 500)).toMatchObject({ outcome: 'http-error', reason: 'http-500' });
    expect(decide({ kind: 'transport', error: { kind: 'timeout', message: 'slow' } }, ctx).outcome).toBe('timeout');
    expect(decide({ kind: 'transport', error: { kind: 'connect', message: 'refused' } }, ctx).outcome).toBe('connect');
    for (const d of [ok('{"status":"error"}'), decide({ kind: 'thrown', error: new Error('x') }, ctx)]) expect(d.destination).toBeUndefined();
  });

  it('names that are not configured, or would reach a dialplan application\'s arguments, are unknown destinations', () => {
    for (const [result, redirect] of [
      ['queue', 'sales'],
      ['queue', 'support,t'],
      ['extensions', '101&PJSIP/999'],
      ['voicemail', '999'],
      ['announcement', 'nosuch'],
      ['menu', 'constructor'],
      ['timecondition', '__proto__'],
      ['interactivemenu', 'nosuch'],
      ['dial', '+90 212'],
      ['dial', '123,tT'],
      ['queue', undefined],
    ] as const) {
      const d = ok(JSON.stringify({ status: 'success', result, redirect }));
      expect(d.outcome, `${result} ${redirect}`).toBe('unknown-destination');
      expect(d.destination).toBeUndefined();
    }
  });
});

describe('a generated corpus of malformed answers', () => {
  const corpus = garbageAnswers(1200);

  it('has at least 1,000 cases of many families', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(1000);
    expect(new Set(corpus.map((c) => c.name)).size).toBeGreaterThanOrEqual(30);
  });

  it('never throws and never routes: every one goes to the fallback', () => {
    const outcomes = new Map<string, number>();
    for (const c of corpus) {
      const body = typeof c.body === 'string' ? c.body : new TextDecoder('utf-8').decode(c.body);
      const d = decide({ kind: 'response', status: c.status ?? 200, headers: c.contentType ? { 'content-type': c.contentType } : {}, body }, ctx);
      expect(d.outcome, `${c.name}: ${body.slice(0, 120)}`).not.toBe('routed');
      expect(d.destination).toBeUndefined();
      outcomes.set(d.outcome, (outcomes.get(d.outcome) ?? 0) + 1);
    }
    // the corpus exercises every refusal path, not just the parser
    for (const o of ['malformed', 'status-error', 'http-error', 'unknown-result', 'unknown-destination']) expect(outcomes.get(o) ?? 0, o).toBeGreaterThan(5);
  });
});
