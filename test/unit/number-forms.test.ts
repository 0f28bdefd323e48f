import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import type { StasisStart } from '../../src/asterisk/ari-events.js';
import { CallEventTracker } from '../../src/asterisk/call-events.js';
import type { CallEvent } from '../../src/asterisk/call-event-types.js';
import { CallSession } from '../../src/calls/session.js';
import { parseConfigText } from '../../src/config/load.js';
import { numberForms } from '../../src/phone.js';
import { callFacts, routeRequest } from '../../src/routing/api-request.js';
import { routeSchema } from '../../src/routing/config.js';
import { createHttpProvider, httpProviderSchema } from '../../src/sms/http-provider.js';
import { startAossms } from '../standins/aossms.js';
import { fakeChannel } from '../helpers/fake-call.js';

/**
 * `{caller}`, `{TEL}`, `{called}` and `{did}` are merged as dialled; `.e164` and `.national` beside
 * each give the other forms, wherever a number is merged: stages, hook events, the routing request,
 * an SMS provider's `{to}`.
 */

describe('numberForms', () => {
  it.each([
    ['0455556666', 'JP', '+81455556666', '0455556666'],
    ['+81 90-1234-5678', undefined, '+819012345678', '09012345678'],
    ['0081455556666', undefined, '+81455556666', '0455556666'],
    ['+12133734253', undefined, '+12133734253', '2133734253'],
    ['0455556666', undefined, '', ''],
    ['anonymous', 'JP', '', ''],
    ['430', 'JP', '', ''],
  ] as const)('%s (%s) → %s, %s', (raw, country, e164, national) => {
    expect(numberForms(raw, country)).toEqual({ e164, national });
  });
});

const start = (caller: string, args: string[]) =>
  ({
    type: 'StasisStart',
    timestamp: new Date().toISOString(),
    args: ['s', ...args],
    channel: { id: 'ch', state: 'Up', caller: { number: caller, name: '' }, dialplan: { context: 'x', exten: '100', priority: 1, app_name: 'Stasis', app_data: '' } },
  }) as unknown as StasisStart;

describe('the forms as merge fields', () => {
  it('a stage: the caller and the DID as dialled, in E.164 and national digits (sms.defaultCountry reads the national ones)', () => {
    const s = new CallSession('s', 'c', fakeChannel('ch'), start('0455556666', ['did=05012345678']), pino({ level: 'silent' }), 'JP');
    expect(s.vars).toMatchObject({
      caller: '0455556666',
      'caller.e164': '+81455556666',
      'caller.national': '0455556666',
      TEL: '0455556666',
      'TEL.e164': '+81455556666',
      did: '05012345678',
      'did.e164': '+815012345678',
      'did.national': '05012345678',
      'called.e164': '+815012345678',
    });
    // no default country: a national number has no E.164 form
    const bare = new CallSession('s', 'c', fakeChannel('ch'), start('0455556666', []), pino({ level: 'silent' }));
    expect(bare.vars).toMatchObject({ 'caller.e164': '', 'caller.national': '', 'called.e164': '' });
    expect(bare.vars).not.toHaveProperty('did.e164');
  });

  it('a stage reads a number only when a field asks for it, and keeps what it read', () => {
    const s = new CallSession('s', 'c', fakeChannel('ch'), start('0455556666', ['did.e164=+810000']), pino({ level: 'silent' }), 'JP');
    // not read yet: still the field that reads it (a routed call that merges no form never parses)
    expect(Object.getOwnPropertyDescriptor(s.vars, 'caller.e164')?.get).toBeTypeOf('function');
    expect(s.vars['caller.e164']).toBe('+81455556666');
    expect(Object.getOwnPropertyDescriptor(s.vars, 'caller.e164')).toMatchObject({ value: '+81455556666', enumerable: true });
    // spread and serialised like any field; the Stasis() argument wins; a step may overwrite one
    expect({ ...s.vars }).toMatchObject({ 'TEL.national': '0455556666', 'did.e164': '+810000' });
    expect(JSON.parse(JSON.stringify(s.vars))).toMatchObject({ 'caller.national': '0455556666' });
    s.vars['TEL.e164'] = 'given';
    expect(s.vars['TEL.e164']).toBe('given');
    // the number as it was when the stage began, as before: a later {caller} does not re-read it
    s.vars.caller = '0312345678';
    expect(s.vars['caller.national']).toBe('0455556666');
  });

  it('the route request looks fields up in the call\'s own, without copying (and so reading) all of them', () => {
    const vars: Record<string, string> = { caller: '0455556666', called: '700' };
    Object.defineProperty(vars, 'caller.e164', { enumerable: true, get: () => { throw new Error('read a number nobody merged'); } });
    const plain = routeSchema.parse({ url: 'http://api.example/route', encoding: 'query' });
    const built = routeRequest(plain, callFacts(vars, 'c'), vars);
    expect(built.url).toContain('0455556666');
    const merged = routeSchema.parse({ url: 'http://api.example/route', encoding: 'query', extra: { n: '{called}' } });
    expect(routeRequest(merged, callFacts(vars, 'c'), vars).url).toContain('n=700');
  });

  it('hook events carry them, and a hook may use them', () => {
    const tracker = new CallEventTracker(undefined, Date.now, 100, 'JP');
    const events: CallEvent[] = [];
    tracker.on('event', (e) => events.push(e));
    tracker.stageEntered({ callId: 'c1', channelId: 'ch', stage: 's', vars: { caller: '09012345678', called: '+81 50 1234 5678' } });
    expect(events[0]!.vars).toMatchObject({ caller: '09012345678', 'caller.e164': '+819012345678', 'TEL.national': '09012345678', 'did.e164': '+815012345678', 'did.national': '05012345678' });
    const { value } = parseConfigText(
      `asterisk:
  ari: { user: u, password: p }
hooks:
  - on: call.start
    request: { url: "http://crm.example/{caller.e164}", body: { tel: "{TEL.national}", did: "{did.e164}" } }
`,
      'cfg.yaml',
      rootSchema,
      {},
    );
    expect(value.hooks).toHaveLength(1);
  });

  it('SMS templates may use them; another suffix is refused', () => {
    const cfg = (tpl: string) => `asterisk:
  ari: { user: u, password: p }
sms:
  templates: { t: "${tpl}" }
`;
    expect(parseConfigText(cfg('Call {caller.national} back ({did.e164})'), 'cfg.yaml', rootSchema, {}).value.sms.templates.t).toBe('Call {caller.national} back ({did.e164})');
    expect(() => parseConfigText(cfg('{caller.intl}'), 'cfg.yaml', rootSchema, {})).toThrow(/malformed merge field caller\.intl/);
  });

  it('the route request: numbers: e164 / national / dialled (the default), a non-number stays as dialled', () => {
    const vars = { caller: '0455556666', called: '05012345678' };
    expect(callFacts(vars, 'c', 'e164', 'JP')).toMatchObject({ caller: '+81455556666', called: '+815012345678', pbx: '+815012345678' });
    expect(callFacts({ caller: '+81455556666', called: '+815012345678' }, 'c', 'national', 'JP')).toMatchObject({ caller: '0455556666', called: '05012345678' });
    expect(callFacts(vars, 'c')).toMatchObject({ caller: '0455556666', called: '05012345678' });
    expect(callFacts({ caller: 'anonymous', called: '430' }, 'c', 'e164', 'JP')).toMatchObject({ caller: 'anonymous', called: '430' });
  });

  it('an SMS provider: {to} is E.164, {to.national} the national digits', async () => {
    const aos = await startAossms();
    try {
      const p = createHttpProvider(
        'aos',
        httpProviderSchema.parse({
          kind: 'http',
          url: aos.endpoint,
          body: { ...aos.credentials, message: '{message} {to.e164}', phoneNumber: '{to.national}' },
        }),
      );
      const r = await p.send({ messageId: 'm1', to: '+819012345678', text: 'hi' });
      expect(r.outcome).toBe('ok');
      expect(aos.requests.at(-1)!.fields).toMatchObject({ message: 'hi +819012345678', phoneNumber: '09012345678' });
    } finally {
      await aos.close();
    }
  });
});
