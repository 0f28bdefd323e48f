import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import type { SalesforceConfig } from '../../src/crm/salesforce/config.js';
import { createSalesforceLogging, type SalesforceLogging } from '../../src/crm/salesforce/logging.js';
import { isInternal, phoneVariants, soslFor } from '../../src/crm/salesforce/match.js';
import { mergeFields, renderComment } from '../../src/crm/salesforce/task.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import type { CallEvent, CallEventKind } from '../../src/asterisk/call-event-types.js';
import type { AmiMessage } from '../../src/asterisk/ami.js';
import { startSalesforce, type SalesforceStandIn, type SeedRecord, type SfTask } from '../standins/salesforce.js';
import { openStore, type Store } from '../../src/store/sqlite.js';

/**
 * Salesforce activity logging against the local stand-in of the REST API, over real HTTP, with
 * a real SQLite store. Calls are fed as the call-event tracker emits them; the SIP end-to-end
 * version is test/e2e/salesforce.test.ts.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const DAY = 86_400_000;
const iso = (daysAgo: number) => new Date(Date.now() - daysAgo * DAY).toISOString();

/** Contacts, Accounts and Leads sharing numbers, written the ways people type them. */
const SEED: SeedRecord[] = [
  { type: 'Contact', Name: 'Ann Contact', phones: { Phone: '(800) 555-1212' }, LastModifiedDate: iso(30) },
  { type: 'Lead', Name: 'Lee Lead', phones: { MobilePhone: '+1 800 555 1212' }, LastModifiedDate: iso(1) },
  { type: 'Contact', Name: 'Old Contact', phones: { Phone: '03-1234-5678' }, LastModifiedDate: iso(90) },
  { type: 'Contact', Name: 'New Contact', phones: { MobilePhone: '+81 3 1234 5678' }, LastModifiedDate: iso(2) },
  { type: 'Account', Name: 'Acme KK', phones: { Phone: '03-1234-5678' }, LastModifiedDate: iso(0) },
  { type: 'Lead', Name: 'Only Lead', phones: { Phone: '090-9999-0000' }, LastModifiedDate: iso(5) },
  { type: 'Account', Name: 'Switchboard Inc', phones: { Phone: '+44 20 7946 0000' }, LastModifiedDate: iso(3) },
  { type: 'Lead', Name: 'Switchboard Lead', phones: { Phone: '020 7946 0000' }, LastModifiedDate: iso(0) },
];
const byName = (sf: SalesforceStandIn, name: string) => sf.records.find((r) => r.Name === name)!;

interface Harness {
  sf: SalesforceStandIn;
  store: Store;
  logging: SalesforceLogging;
  lines: Array<Record<string, unknown>>;
  ami: { emit(ev: AmiMessage): void };
  config: SalesforceConfig;
}

function parseSalesforce(yaml: string, env: Record<string, string> = {}): SalesforceConfig {
  const text = `asterisk:\n  ari: { user: u, password: p }\ncrm:\n  salesforce:\n${yaml}`;
  return parseConfigText(text, 'test.yaml', rootSchema, env).value.crm!.salesforce!;
}

async function harness(opts: { yaml?: string; sf?: SalesforceStandIn; store?: Store; env?: Record<string, string>; auth?: string } = {}): Promise<Harness> {
  const sf = opts.sf ?? (await startSalesforce({ records: SEED, taskFields: { dateTime: ['Dial_Start__c', 'Call_Start__c', 'Call_End__c'], text: ['Call_Memo__c'] } }));
  if (!opts.sf) cleanups.push(() => sf.close());
  let store = opts.store;
  if (!store) {
    const s = openStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'sf-')), 'db.sqlite')}`);
    cleanups.push(() => s.close());
    store = s;
  }
  const auth = opts.auth ?? `{ flow: client_credentials, clientId: "${sf.clientId}", clientSecret: "\${SF_SECRET}" }`;
  // quick retries for the tests; a test's own yaml wins
  const defaults = ['retry: { interval: 100ms, maxInterval: 300ms }', 'startDelay: 0', 'timeout: 2s'].filter((l) => !(opts.yaml ?? '').includes(`    ${l.split(':')[0]}:`));
  const config = parseSalesforce(
    `    instanceUrl: ${sf.url}
    auth: ${auth}
${defaults.map((l) => `    ${l}\n`).join('')}${opts.yaml ?? ''}`,
    { SF_SECRET: sf.clientSecret, ...opts.env },
  );
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const handlers = new Map<string, (ev: AmiMessage) => void>();
  const ami = {
    on(event: string, fn: (ev: AmiMessage) => void) {
      handlers.set(event, fn);
      return () => handlers.delete(event);
    },
    emit(ev: AmiMessage) {
      handlers.get(String(ev.event).toLowerCase())?.(ev);
    },
  };
  const logging = createSalesforceLogging({ config, store, log: pino({ level: 'debug' }, sink), ami });
  logging.start();
  cleanups.push(() => logging.stop());
  return { sf, store, logging, lines, ami, config };
}

/** A VarSet as asterisk-manager delivers it: it turns the `Variable:` line into `{ NAME: '' }`. */
function varSet(name: string, value: string, callId: string): AmiMessage {
  return { event: 'VarSet', variable: { [name]: '' } as unknown as string, value, linkedid: callId, uniqueid: callId };
}

let seq = 0;
interface CallSpec {
  caller: string;
  did?: string;
  context?: string;
  answered?: boolean;
  queue?: string;
  talkSeconds?: number;
}

/** The events the tracker emits for one call, with their times. */
function callEvents(spec: CallSpec): { callId: string; events: CallEvent[] } {
  const callId = `17000${++seq}.${seq}`;
  const t0 = Date.now() - 60_000;
  const base = { callId, caller: spec.caller, TEL: spec.caller, callerName: 'Test Caller', called: spec.did ?? '100', did: spec.did ?? '100', channelId: callId };
  const ev = (kind: CallEventKind, at: number, own: Record<string, string> = {}): CallEvent => ({
    kind,
    callId,
    key: `${callId}/${kind}`,
    at,
    vars: { ...own, ...base, event: kind, time: new Date(at).toISOString() },
  });
  const events = [ev('call.start', t0, { context: spec.context ?? 'from-test' })];
  if (spec.queue) events.push(ev('queue.join', t0 + 500, { queue: spec.queue, position: '1' }));
  const talk = spec.talkSeconds ?? 42;
  const answerAt = t0 + 8_000;
  const endAt = spec.answered ? answerAt + talk * 1000 : t0 + 20_000;
  if (spec.answered) events.push(ev('call.answer', answerAt, { answeredBy: 'PJSIP/agent', agent: 'agent', answerSeconds: '8' }));
  events.push(
    ev('call.end', endAt, {
      duration: String(Math.round((endAt - t0) / 1000)),
      talkSeconds: spec.answered ? String(talk) : '0',
      answered: spec.answered ? 'yes' : 'no',
      cause: '16',
      causeText: 'Normal Clearing',
    }),
  );
  return { callId, events };
}

async function until(pred: () => boolean, what: string, timeoutMs = 8_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function row(h: Harness, callId: string): Record<string, any> {
  return h.store.db.prepare('SELECT * FROM sf_activities WHERE call_id = ?').get(callId) as Record<string, any>;
}

async function logged(h: Harness, callId: string): Promise<Record<string, any>> {
  await until(() => row(h, callId)?.status === 'done', `call ${callId} logged (${JSON.stringify(row(h, callId))})`);
  return row(h, callId);
}

function taskOf(h: Harness, callId: string): SfTask[] {
  return h.sf.tasks.filter((t) => t.fields.CallObject === callId);
}

/** Data requests that belong to one call: the Task ones name it; a search precedes them. */
function requestsFor(h: Harness, since: number) {
  return h.sf.dataRequests().slice(since);
}

function matchLine(h: Harness, callId: string) {
  return h.lines.find((l) => l.msg === 'salesforce record matched' && l.callId === callId);
}

describe('which record (SF6)', () => {
  it('a number on a Contact and a Lead goes to the Contact, with one search; the log names the rule', async () => {
    const h = await harness();
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    events.forEach(h.logging.onEvent);
    const r = await logged(h, callId);
    const [task] = taskOf(h, callId);
    expect(task!.fields.WhoId).toBe(byName(h.sf, 'Ann Contact').Id);
    expect(task!.fields.WhatId).toBeUndefined();
    expect(r.match_rule).toBe('contact');
    expect(matchLine(h, callId)).toMatchObject({ rule: 'contact', recordType: 'Contact', cached: false });
    const searches = h.sf.dataRequests().filter((q) => q.kind === 'search');
    expect(searches).toHaveLength(1);
    // one request names all three objects, in MiiTel's priority
    expect(searches[0]!.q).toMatch(/RETURNING Contact\(.*\), Account\(.*\), Lead\(/);
  });

  it('two Contacts with the number: the more recently modified one', async () => {
    const h = await harness();
    const { callId, events } = callEvents({ caller: '+81312345678', answered: true });
    events.forEach(h.logging.onEvent);
    await logged(h, callId);
    // an Account has the number too, and was modified later: Contacts still come first
    expect(taskOf(h, callId)[0]!.fields.WhoId).toBe(byName(h.sf, 'New Contact').Id);
  });

  it('a number only on a Lead goes to the Lead; one on an Account and a Lead goes to the Account, as WhatId', async () => {
    const h = await harness();
    const lead = callEvents({ caller: '+819099990000' });
    const account = callEvents({ caller: '+442079460000' });
    [...lead.events, ...account.events].forEach(h.logging.onEvent);
    await logged(h, lead.callId);
    await logged(h, account.callId);
    expect(taskOf(h, lead.callId)[0]!.fields.WhoId).toBe(byName(h.sf, 'Only Lead').Id);
    expect(matchLine(h, lead.callId)).toMatchObject({ rule: 'lead' });
    const acc = taskOf(h, account.callId)[0]!.fields;
    expect(acc.WhatId).toBe(byName(h.sf, 'Switchboard Inc').Id);
    expect(acc.WhoId).toBeUndefined();
    expect(matchLine(h, account.callId)).toMatchObject({ rule: 'account' });
  });

  it('stored as (800) 555-1212 while the caller is +18005551212: found, though the search index would not match the bare digits', async () => {
    const sf = await startSalesforce({ records: [{ type: 'Contact', Name: 'Typed', phones: { Phone: '(800) 555-1212' } }] });
    cleanups.push(() => sf.close());
    const h = await harness({ sf });
    // what a naive client would send finds nothing: the index splits "(800) 555-1212" into 800 | 555 | 1212
    const naive = await fetch(`${sf.url}/services/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: sf.clientId, client_secret: sf.clientSecret }) });
    const token = ((await naive.json()) as { access_token: string }).access_token;
    const bare = await fetch(`${sf.url}/services/data/v62.0/search/?q=${encodeURIComponent('FIND {18005551212 OR 8005551212} IN PHONE FIELDS RETURNING Contact(Id)')}`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await bare.json()) as { searchRecords: unknown[] }).searchRecords).toEqual([]);

    const { callId, events } = callEvents({ caller: '+18005551212' });
    events.forEach(h.logging.onEvent);
    await logged(h, callId);
    expect(taskOf(h, callId)[0]!.fields.WhoId).toBe(byName(sf, 'Typed').Id);
  });

  it('a click-to-call record id wins, without a search', async () => {
    const h = await harness();
    const target = byName(h.sf, 'Only Lead');
    const { callId, events } = callEvents({ caller: 'PJSIP/staff', did: '+18005551212', context: 'from-internal', answered: true });
    h.logging.onEvent(events[0]!);
    h.ami.emit(varSet('SF_RECORD_ID', target.Id, callId));
    events.slice(1).forEach(h.logging.onEvent);
    const r = await logged(h, callId);
    // +18005551212 is on a Contact, but the agent called from the Lead's page
    expect(taskOf(h, callId)[0]!.fields.WhoId).toBe(target.Id);
    expect(h.sf.dataRequests().filter((q) => q.kind === 'search')).toHaveLength(0);
    expect(r.match_rule).toBe('click-to-call');
    expect(r.api_calls).toBe(1);
    expect(matchLine(h, callId)).toMatchObject({ rule: 'click-to-call', variable: 'SF_RECORD_ID' });
  });

  it('a second call from the same number within the cache time costs no search', async () => {
    const h = await harness();
    const a = callEvents({ caller: '+18005551212' });
    a.events.forEach(h.logging.onEvent);
    await logged(h, a.callId);
    const b = callEvents({ caller: '+1 (800) 555-1212' });
    b.events.forEach(h.logging.onEvent);
    const r = await logged(h, b.callId);
    expect(h.sf.dataRequests().filter((q) => q.kind === 'search')).toHaveLength(1);
    expect(r.api_calls).toBe(1);
    expect(matchLine(h, b.callId)).toMatchObject({ rule: 'contact', cached: true });
  });

  it('the search carries every usual way of writing the number', () => {
    const us = phoneVariants('+18005551212').map((t) => t.join(' '));
    expect(us).toEqual(expect.arrayContaining(['18005551212', '8005551212', '800 555 1212', '1 800 555 1212', '1 8005551212']));
    const jp = phoneVariants('0312345678', 'JP').map((t) => t.join(' '));
    expect(jp).toEqual(expect.arrayContaining(['0312345678', '81312345678', '312345678', '03 1234 5678', '81 3 1234 5678']));
    expect(phoneVariants('anonymous')).toEqual([]);
    expect(soslFor([['18005551212'], ['800', '555', '1212']])).toBe(
      'FIND {18005551212 OR "800 555 1212"} IN PHONE FIELDS RETURNING Contact(Id, LastModifiedDate ORDER BY LastModifiedDate DESC LIMIT 1), Account(Id, LastModifiedDate ORDER BY LastModifiedDate DESC LIMIT 1), Lead(Id, LastModifiedDate ORDER BY LastModifiedDate DESC LIMIT 1)',
    );
  });

  it('a call between our own phones (an extension, a SIP user name) makes no Task and costs nothing', async () => {
    const h = await harness();
    const toExtension = callEvents({ caller: 'staff', did: '201', context: 'from-internal', answered: true });
    const fromUser = callEvents({ caller: 'staff', did: '100', answered: true });
    [...toExtension.events, ...fromUser.events].forEach(h.logging.onEvent);
    await logged(h, toExtension.callId);
    await logged(h, fromUser.callId);
    expect(row(h, toExtension.callId)).toMatchObject({ match_rule: 'internal', task_id: null, api_calls: 0 });
    expect(row(h, fromUser.callId)).toMatchObject({ match_rule: 'internal', task_id: null });
    expect(h.sf.requests).toHaveLength(0);
    // not calls logged, nor part of the cost per call
    expect(await h.logging.health()).toMatchObject({ loggedLastDay: 0, apiCallsPerCall: null });
    expect(isInternal('+81312345678')).toBe(false);
    expect(isInternal('anonymous')).toBe(false);
    expect(isInternal('12345')).toBe(true);
  });

  it('a withheld number: no search, a Task on no record', async () => {
    const h = await harness();
    const { callId, events } = callEvents({ caller: 'anonymous' });
    events.forEach(h.logging.onEvent);
    const r = await logged(h, callId);
    expect(r.match_rule).toBe('no-number');
    expect(h.sf.dataRequests().map((q) => q.kind)).toEqual(['create']);
    expect(taskOf(h, callId)[0]!.fields.WhoId).toBeUndefined();
  });
});

describe('docs/salesforce.md', () => {
  it('the example is a valid config, as written', () => {
    const md = readFileSync(join(REPO_ROOT, 'docs/salesforce.md'), 'utf8');
    const example = /## Example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(md)?.[1];
    expect(example).toBeDefined();
    const env = { ARI_USER: 'u', ARI_PASSWORD: 'p', AMI_USER: 'a', AMI_SECRET: 's', SF_CLIENT_ID: 'c', SF_CLIENT_SECRET: 'x' };
    const sf = parseConfigText(example!, 'docs/salesforce.md', rootSchema, env).value.crm!.salesforce!;
    expect(sf).toMatchObject({ status: 'Completed', memo: '{memo}', owners: { map: { '2601': expect.stringMatching(/^005/) }, lookup: { field: 'Extension', cache: 3_600_000 } } });
  });

  it('the defaults it states are the schema\'s', () => {
    const md = readFileSync(join(REPO_ROOT, 'docs/salesforce.md'), 'utf8');
    const sf = parseSalesforce('    instanceUrl: https://x.my.salesforce.com\n    auth: { flow: client_credentials, clientId: c, clientSecret: s }\n');
    const row = (key: string) => new RegExp(`^\\| \`${key}\` \\| ([^|]+) \\|`, 'm').exec(md)?.[1]?.trim();
    expect(row('startDelay')).toBe('`1s`');
    expect(sf.startDelay).toBe(1_000);
    expect(row('memoEvent')).toBe('`CallActionsMemo`');
    expect(sf.memoEvent).toBe('CallActionsMemo');
    expect(row('lookupCache')).toBe('`1m`');
    expect(sf.lookupCache).toBe(60_000);
    expect(sf.status).toBe('Completed');
  });
});

describe('the Task owner', () => {
  it('an owner Salesforce refuses (an inactive User): the write goes again without OwnerId, and that User is not offered again', async () => {
    const sf = await startSalesforce({ records: SEED, users: [{ Name: 'Retired Agent', Extension: 'agent', IsActive: false }] });
    cleanups.push(() => sf.close());
    const retired = sf.users.find((u) => u.Name === 'Retired Agent')!.Id;
    const h = await harness({ sf, yaml: `    owners: { map: { agent: ${retired} } }\n` });
    const before = sf.dataRequests().length;
    const first = callEvents({ caller: '+18005551212', answered: true });
    first.events.forEach(h.logging.onEvent);
    await logged(h, first.callId);
    expect(taskOf(h, first.callId)[0]!.fields.OwnerId).toBe(sf.integrationUserId);
    expect(requestsFor(h, before).map((r) => `${r.kind} ${r.status}`)).toEqual(['search 200', 'create 400', 'create 201']);
    expect(requestsFor(h, before)[1]!.answer).toMatch(/INACTIVE_OWNER_OR_USER/);
    expect(h.lines.find((l) => l.msg === 'salesforce refused the Task owner; the integration user owns the Task')).toMatchObject({ owner: retired });

    const next = sf.dataRequests().length;
    const second = callEvents({ caller: '+18005551212', answered: true });
    second.events.forEach(h.logging.onEvent);
    await logged(h, second.callId);
    expect(requestsFor(h, next).map((r) => `${r.kind} ${r.status}`)).toEqual(['create 201']);
    expect(h.lines.find((l) => String(l.msg).startsWith('salesforce Task owner') && l.callId === second.callId)).toMatchObject({ level: 40, owner: 'integration user', reason: `User ${retired} (map: agent) was refused as owner` });
  });
});

describe('a memo after the call', () => {
  it('a memo that arrives while the Task is being created is written right after, once', async () => {
    const h = await harness({ yaml: '    fields: { memo: Call_Memo__c }\n    memo: "{memo}"\n' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    const before = h.sf.dataRequests().length;
    h.sf.enqueue({ kind: 'ok' }, { kind: 'slow', ms: 400 });
    events.forEach(h.logging.onEvent);
    await h.sf.waitFor(() => h.sf.dataRequests().some((r, i) => i >= before && r.kind === 'create'), 5_000, 'the create');
    expect(await h.logging.memo(callId, 'Wants a quote', 'api')).toBe('changed');
    expect(await h.logging.memo(callId, 'Wants a quote', 'api')).toBe('unchanged');
    await until(() => taskOf(h, callId)[0]?.updates.length === 1 && row(h, callId)?.status === 'done', 'the memo written after the create');
    const [task] = taskOf(h, callId);
    expect(task!.updates[0]!.fields).toMatchObject({ Call_Memo__c: 'Wants a quote' });
    expect(requestsFor(h, before).map((r) => r.kind)).toEqual(['search', 'create', 'update']);
    expect(row(h, callId)).toMatchObject({ api_calls: 3, memo: 'Wants a quote', synced: 'end' });
  });
});

describe('a memo during the call', () => {
  it('goes out with the call\'s end (Task made at the answer); the same memo afterwards sends nothing', async () => {
    const h = await harness({ yaml: '    when: call.answer\n    fields: { memo: Call_Memo__c }\n    memo: "{memo}"\n' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    const end = events.pop()!;
    events.forEach(h.logging.onEvent);
    await until(() => row(h, callId)?.status === 'waiting', 'the Task made at the answer');
    expect(await h.logging.memo(callId, 'Call back Friday', 'api')).toBe('changed');
    h.logging.onEvent(end);
    await logged(h, callId);
    const [task] = taskOf(h, callId);
    expect(task!.updates).toHaveLength(1);
    expect(task!.updates[0]!.fields).toMatchObject({ Call_Memo__c: 'Call back Friday' });
    expect(await h.logging.memoRoute({ callId, memo: 'Call back Friday' })).toEqual({ status: 200, body: { callId, changed: false } });
    expect(await h.logging.memoRoute({ callId: 'nope', memo: 'x' })).toMatchObject({ status: 404 });
  });
});

describe('numbers in two forms', () => {
  it('{number.e164} and {number.national} whatever form Asterisk gave; what is no number stays as it is', () => {
    const call = (number: string, vars: Record<string, string> = {}) => ({ callId: '1.1', direction: 'inbound' as const, number, dialStart: 0, answered: true, vars: { caller: number, ...vars } });
    const f = (number: string, vars?: Record<string, string>) => mergeFields('end', call(number, vars), undefined, { missedMark: 'Missed' }, { defaultCountry: 'JP' });
    expect(f('0354127788')).toMatchObject({ number: '0354127788', 'number.e164': '+81354127788', 'number.national': '0354127788', 'caller.e164': '+81354127788' });
    expect(f('+81663451200', { called: '0120556601' })).toMatchObject({ 'number.e164': '+81663451200', 'number.national': '0663451200', 'called.national': '0120556601', 'called.e164': '+81120556601' });
    expect(f('0081663451200')).toMatchObject({ 'number.e164': '+81663451200' });
    expect(f('anonymous')).toMatchObject({ 'number.e164': 'anonymous', 'number.national': 'anonymous' });
    expect(f('2601')).toMatchObject({ 'number.e164': '2601' });
  });
});

describe('what the Task says (SF3–SF5)', () => {
  const CUSTOM = `    subject: "{callType} call {number}"
    fields: { dialStart: Dial_Start__c, callStart: Call_Start__c, callEnd: Call_End__c, memo: Call_Memo__c }
    memo: "{CALL_MEMO}"
    variables: [CALL_MEMO]
    comment:
      - { label: Caller, value: "{caller}" }
      - { label: Queue, value: "{queue}" }
      - { label: Memo, value: "{CALL_MEMO}" }
    missedComment: "Missed {direction} call from {number}, rang {duration} s"
    missedMark: 不在
    timeZone: Asia/Tokyo
`;

  it('an answered inbound call: subject, status, call fields, the three DateTimes, memo, labelled comment', async () => {
    const h = await harness({ yaml: CUSTOM });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true, queue: 'support', talkSeconds: 42 });
    h.logging.onEvent(events[0]!);
    h.ami.emit(varSet('__CALL_MEMO', 'Quote;Follow-up', callId));
    events.slice(1).forEach(h.logging.onEvent);
    await logged(h, callId);
    const [task] = taskOf(h, callId);
    const start = events[0]!.at;
    const answer = events.find((e) => e.kind === 'call.answer')!.at;
    const end = events.at(-1)!.at;
    expect(task!.fields).toMatchObject({
      Subject: 'Inbound call +18005551212',
      Status: 'Completed',
      TaskSubtype: 'Call',
      CallType: 'Inbound',
      CallObject: callId,
      CallDurationInSeconds: 42,
      CallDisposition: 'Answered',
      Dial_Start__c: new Date(start).toISOString(),
      Call_Start__c: new Date(answer).toISOString(),
      Call_End__c: new Date(end).toISOString(),
      Call_Memo__c: 'Quote;Follow-up',
      Description: 'Caller: +18005551212\nQueue: support\nMemo: Quote;Follow-up',
    });
    expect(task!.fields.ActivityDate).toBe(new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Tokyo' }).format(new Date(start)));
  });

  it('missed inbound and missed outbound calls: the missed comment, marked as missed', async () => {
    const h = await harness({ yaml: CUSTOM });
    const inbound = callEvents({ caller: '+819099990000', queue: 'support' });
    const outbound = callEvents({ caller: '201', did: '+442079460000', context: 'from-internal' });
    [...inbound.events, ...outbound.events].forEach(h.logging.onEvent);
    await logged(h, inbound.callId);
    await logged(h, outbound.callId);
    const i = taskOf(h, inbound.callId)[0]!.fields;
    expect(i).toMatchObject({ CallType: 'Inbound', CallDisposition: '不在', CallDurationInSeconds: 0, Description: '不在\nMissed inbound call from +819099990000, rang 20 s' });
    expect(i.Call_Start__c).toBeUndefined();
    const o = taskOf(h, outbound.callId)[0]!.fields;
    // outbound: the dialled number is looked up and named
    expect(o).toMatchObject({ CallType: 'Outbound', Subject: 'Outbound call +442079460000', CallDisposition: '不在', Description: '不在\nMissed outbound call from +442079460000, rang 20 s' });
    expect(o.WhatId).toBe(byName(h.sf, 'Switchboard Inc').Id);
  });

  it('a 40,000-character comment is cut to 30,000 characters, labels included', async () => {
    const long = 'x'.repeat(40_000);
    const text = renderComment([{ label: 'Caller', value: '{caller}' }, { label: 'Memo', value: '{memo}' }], { caller: '+18005551212', memo: long });
    expect(text).toHaveLength(30_000);
    expect(text.startsWith('Caller: +18005551212\nMemo: xxx')).toBe(true);
    expect(text.endsWith('x…')).toBe(true);
    // a surrogate pair at the cut is not split
    const emoji = renderComment('{memo}', { memo: '😀'.repeat(40_000) });
    expect(Array.from(emoji)).toHaveLength(30_000);

    // and through Salesforce, which refuses a Description over 32,000
    const h = await harness({ yaml: CUSTOM });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    h.logging.onEvent(events[0]!);
    h.ami.emit(varSet('CALL_MEMO', long, callId));
    events.slice(1).forEach(h.logging.onEvent);
    await logged(h, callId);
    const d = String(taskOf(h, callId)[0]!.fields.Description);
    expect(d).toHaveLength(30_000);
    expect(d.startsWith('Caller: +18005551212\nMemo: xxxx')).toBe(true);
  });
});

describe('when (SF2), and what it costs (SF7)', () => {
  it('a call logged at its end costs at most 2 API calls: one search, one create', async () => {
    const h = await harness();
    for (const caller of ['+18005551212', '+819099990000', '+15550001111']) {
      const before = h.sf.dataRequests().length;
      const { callId, events } = callEvents({ caller, answered: true });
      events.forEach(h.logging.onEvent);
      const r = await logged(h, callId);
      const used = requestsFor(h, before);
      expect(used.map((q) => q.kind)).toEqual(['search', 'create']);
      expect(r.api_calls).toBe(2);
    }
    const health = await h.logging.health();
    expect(health.apiCallsPerCall).toBe(2);
    expect(health.loggedLastDay).toBe(3);
    // every answer's limit header is read
    expect(health.usage).toMatchObject({ used: 6, limit: 15_000, remaining: 14_994 });
  });

  it('created at the start, updated at the end: exactly one Task', async () => {
    const h = await harness({ yaml: '    when: call.start\n    fields: { callEnd: Call_End__c }\n' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true, talkSeconds: 30 });
    h.logging.onEvent(events[0]!);
    await until(() => row(h, callId)?.status === 'waiting', 'the Task created at the start');
    const [created] = taskOf(h, callId);
    expect(created!.fields).not.toHaveProperty('CallDurationInSeconds');
    expect(created!.fields).not.toHaveProperty('Call_End__c');
    events.slice(1).forEach(h.logging.onEvent);
    const r = await logged(h, callId);
    const tasks = taskOf(h, callId);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.updates).toHaveLength(1);
    expect(tasks[0]!.updates[0]!.fields).toMatchObject({ CallDurationInSeconds: 30, CallDisposition: 'Answered', Call_End__c: new Date(events.at(-1)!.at).toISOString() });
    // an update does not move the Task to another record
    expect(tasks[0]!.updates[0]!.fields).not.toHaveProperty('WhoId');
    expect(h.sf.dataRequests().map((q) => q.kind)).toEqual(['search', 'create', 'update']);
    expect(r.api_calls).toBe(3);
    // the call end seen again (a restart, AMI and ARI) changes nothing
    h.logging.onEvent(events.at(-1)!);
    await new Promise((r2) => setTimeout(r2, 200));
    expect(h.sf.dataRequests()).toHaveLength(3);
  });

  it('with when: call.start, a call that ends before its Task was written gets one create with the end data', async () => {
    const h = await harness({ yaml: '    when: call.start\n    startDelay: 300ms\n' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    events.forEach(h.logging.onEvent);
    await logged(h, callId);
    expect(h.sf.dataRequests().map((q) => q.kind)).toEqual(['search', 'create']);
    expect(taskOf(h, callId)[0]!.fields.CallDisposition).toBe('Answered');
  });
});

describe('failures go through the durable queue (no activity lost)', () => {
  it('the token expires mid-run: renewed on INVALID_SESSION_ID, the Task is updated, none lost', async () => {
    const h = await harness({ yaml: '    when: call.start\n' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    h.logging.onEvent(events[0]!);
    await until(() => row(h, callId)?.status === 'waiting', 'the Task created at the start');
    h.sf.expireTokens();
    events.slice(1).forEach(h.logging.onEvent);
    await logged(h, callId);
    expect(h.sf.requests.filter((q) => q.kind === 'token')).toHaveLength(2);
    expect(h.sf.dataRequests().map((q) => `${q.kind} ${q.status}`)).toEqual(['search 200', 'create 201', 'update 401', 'update 204']);
    expect(taskOf(h, callId)).toHaveLength(1);
    expect(h.lines.some((l) => l.msg === 'salesforce session expired: renewing the token')).toBe(true);
    // the token never reaches the log
    const token = h.sf.requests.filter((q) => q.kind === 'token').map((q) => JSON.parse(q.answer!).access_token as string);
    expect(JSON.stringify(h.lines)).not.toContain(token[0]!.split('!')[1]);
  });

  it('the token is renewed before the session timeout runs out', async () => {
    const h = await harness({ yaml: '    sessionTimeout: 1s\n' });
    const a = callEvents({ caller: '+18005551212' });
    a.events.forEach(h.logging.onEvent);
    await logged(h, a.callId);
    await new Promise((r) => setTimeout(r, 600));
    const b = callEvents({ caller: '+819099990000' });
    b.events.forEach(h.logging.onEvent);
    await logged(h, b.callId);
    expect(h.sf.requests.filter((q) => q.kind === 'token')).toHaveLength(2);
    expect(h.sf.dataRequests().every((q) => q.status !== 401)).toBe(true);
  });

  it('REQUEST_LIMIT_EXCEEDED is retried later; /health says so, and warns when the allowance runs low', async () => {
    const h = await harness();
    h.sf.enqueue({ kind: 'limit' }, { kind: 'limit' });
    const { callId, events } = callEvents({ caller: '+18005551212' });
    events.forEach(h.logging.onEvent);
    await until(() => row(h, callId)?.attempts >= 1 && row(h, callId)?.status === 'pending', 'a failed first attempt');
    const pending = row(h, callId);
    expect(pending.reason).toMatch(/http-403 REQUEST_LIMIT_EXCEEDED/);
    expect(pending.next_at).toBeGreaterThan(Date.now() - 50);
    expect((await h.logging.health()).warnings.join('\n')).toMatch(/REQUEST_LIMIT_EXCEEDED/);
    const r = await logged(h, callId);
    expect(r.attempts).toBe(3);
    expect(taskOf(h, callId)).toHaveLength(1);

    h.sf.setUsage(14_950, 15_000);
    const b = callEvents({ caller: '+819099990000' });
    b.events.forEach(h.logging.onEvent);
    await logged(h, b.callId);
    const health = await h.logging.health();
    expect(health.usage).toMatchObject({ remaining: 48, limit: 15_000 });
    expect(health.warnings.join('\n')).toMatch(/48 of 15000 daily requests left/);
  });

  it('a 500 on the create, then an answer lost after Salesforce created the Task: still one Task', async () => {
    const h = await harness();
    h.sf.enqueue({ kind: 'ok' }, { kind: 'http500' }, { kind: 'ok' }, { kind: 'lose-answer' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    events.forEach(h.logging.onEvent);
    const r = await logged(h, callId);
    expect(taskOf(h, callId)).toHaveLength(1);
    // search, create (500: may have gone through) → look-up finds none → create (answer lost) → look-up finds it → update
    expect(h.sf.dataRequests().map((q) => `${q.kind} ${q.status}`)).toEqual(['search 200', 'create 500', 'query 200', 'create 0', 'query 200', 'update 204']);
    expect(r.task_id).toBe(taskOf(h, callId)[0]!.Id);
  });

  it('a create cut off by a shutdown resumes after the restart, without a second Task', async () => {
    const first = await harness();
    first.sf.enqueue({ kind: 'ok' }, { kind: 'hang' });
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    events.forEach(first.logging.onEvent);
    await first.sf.waitFor(() => first.sf.dataRequests().some((q) => q.kind === 'create'), 5_000, 'the create');
    await first.logging.stop();
    expect(row(first, callId)).toMatchObject({ status: 'pending', create_unknown: 1 });

    const second = await harness({ sf: first.sf, store: first.store });
    await logged(second, callId);
    expect(taskOf(second, callId)).toHaveLength(1);
    // the match was kept: no second search
    expect(first.sf.dataRequests().filter((q) => q.kind === 'search')).toHaveLength(1);
  });

  it('restarted mid-call after the Task was created at the start: the end updates it, keeping what the start knew', async () => {
    const yaml = '    when: call.start\n    fields: { dialStart: Dial_Start__c, callEnd: Call_End__c }\n';
    const first = await harness({ yaml });
    const { callId, events } = callEvents({ caller: '201', did: '+442079460000', context: 'from-internal', answered: true });
    first.logging.onEvent(events[0]!);
    await until(() => row(first, callId)?.status === 'waiting', 'the Task created at the start');
    await first.logging.stop();

    // the new process sees only the call's end (the tracker adopts calls already under way)
    const second = await harness({ yaml, sf: first.sf, store: first.store });
    second.logging.onEvent(events.at(-1)!);
    await logged(second, callId);
    const [task] = taskOf(second, callId);
    expect(task!.updates).toHaveLength(1);
    expect(task!.updates[0]!.fields).toMatchObject({
      CallType: 'Outbound',
      Subject: 'Outbound call +442079460000',
      Dial_Start__c: new Date(events[0]!.at).toISOString(),
      Call_End__c: new Date(events.at(-1)!.at).toISOString(),
      CallDisposition: 'Answered',
    });
  });

  it('a call whose end is never reported is logged with what is known after 5 idle hours; stray variables are not', async () => {
    const h = await harness();
    const { callId, events } = callEvents({ caller: '+18005551212', answered: true });
    events.slice(0, -1).forEach(h.logging.onEvent);
    h.ami.emit(varSet('SF_RECORD_ID', byName(h.sf, 'Only Lead').Id, 'no-such-call'));
    h.logging.sweep(Date.now() + 4 * 3_600_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(row(h, callId)).toBeUndefined();
    h.logging.sweep(Date.now() + 6 * 3_600_000);
    await logged(h, callId);
    expect(taskOf(h, callId)[0]!.fields).toMatchObject({ CallDisposition: 'Answered', WhoId: byName(h.sf, 'Ann Contact').Id });
    expect(h.lines.some((l) => l.msg === 'salesforce: the end of a call was never seen; logging what is known' && l.callId === callId)).toBe(true);
    expect(row(h, 'no-such-call')).toBeUndefined();
    expect(h.sf.tasks).toHaveLength(1);
  });

  it('timeouts and 503s are retried; a Task Salesforce refuses fails, and /health lists it', async () => {
    const h = await harness({ yaml: '    timeout: 300ms\n' });
    h.sf.enqueue({ kind: 'slow', ms: 600 }, { kind: 'http503' });
    const a = callEvents({ caller: '+18005551212' });
    a.events.forEach(h.logging.onEvent);
    await logged(h, a.callId);
    expect(taskOf(h, a.callId)).toHaveLength(1);

    const bad = await harness({ yaml: '    fields: { dialStart: No_Such_Field__c }\n' });
    const b = callEvents({ caller: '+18005551212' });
    b.events.forEach(bad.logging.onEvent);
    await until(() => row(bad, b.callId)?.status === 'failed', 'a final failure');
    expect(row(bad, b.callId).reason).toMatch(/http-400 INVALID_FIELD/);
    expect(await bad.logging.health()).toMatchObject({ failedLastDay: 1 });
    expect((await bad.logging.health()).warnings.join('\n')).toMatch(/1 Salesforce activity failed/);
    const log = await bad.logging.activitiesRoute(new URL('http://x/salesforce/activities?status=failed'));
    expect(log.body).toMatchObject({ entries: [{ callId: b.callId, status: 'failed', attemptLog: [{ outcome: 'final', requests: [{ method: 'GET' }, { method: 'POST', status: 400, errorCode: 'INVALID_FIELD' }] }] }] });
  });
});

describe('connection (SF1)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

  it('JWT bearer flow: an RS256 assertion signed with the key from the environment', async () => {
    const sf = await startSalesforce({ records: SEED, jwt: { username: 'integration@example.com', publicKey } });
    cleanups.push(() => sf.close());
    const h = await harness({
      sf,
      auth: `{ flow: jwt_bearer, clientId: "${sf.clientId}", username: integration@example.com, privateKey: "\${SF_PRIVATE_KEY}" }`,
      // an env var holding a PEM often has its line breaks written as \n
      env: { SF_PRIVATE_KEY: privateKey.replaceAll('\n', '\\n') },
    });
    const { callId, events } = callEvents({ caller: '+18005551212' });
    events.forEach(h.logging.onEvent);
    await logged(h, callId);
    const tokenReq = new URLSearchParams(sf.requests.find((q) => q.kind === 'token')!.body);
    expect(tokenReq.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = JSON.parse(Buffer.from(tokenReq.get('assertion')!.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({ iss: sf.clientId, sub: 'integration@example.com', aud: 'https://login.salesforce.com' });
    expect(claims.exp - Date.now() / 1000).toBeLessThanOrEqual(180);
  });

  it('a refused credential keeps the activity queued and /health says why', async () => {
    const sf = await startSalesforce({ records: SEED, jwt: { username: 'integration@example.com', publicKey } });
    cleanups.push(() => sf.close());
    const other = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const h = await harness({
      sf,
      auth: `{ flow: jwt_bearer, clientId: "${sf.clientId}", username: integration@example.com, privateKey: "\${SF_PRIVATE_KEY}" }`,
      env: { SF_PRIVATE_KEY: other.privateKey },
    });
    const { callId, events } = callEvents({ caller: '+18005551212' });
    events.forEach(h.logging.onEvent);
    await until(() => row(h, callId)?.attempts >= 2 && row(h, callId)?.status === 'pending', 'two failed attempts');
    expect(row(h, callId)).toMatchObject({ status: 'pending', task_id: null });
    expect(row(h, callId).reason).toMatch(/token request: http-400 invalid_grant \(invalid assertion\)/);
    expect((await h.logging.health()).warnings.join('\n')).toMatch(/Salesforce authentication failing/);
    expect(sf.dataRequests()).toHaveLength(0);
  });

  it('config: unknown merge fields, a memo field without its template and a bad key are errors with their line', () => {
    const bad = (yaml: string, env: Record<string, string> = {}) => {
      try {
        parseSalesforce(`    instanceUrl: https://example.my.salesforce.com\n${yaml}`, env);
      } catch (e) {
        return (e as ConfigError).message;
      }
      return 'no error';
    };
    expect(bad('    auth: { flow: client_credentials, clientId: a, clientSecret: b }\n    subject: "{callType} {nope}"\n')).toMatch(/test\.yaml:7:\d+: crm\.salesforce\.subject: unknown merge field \{nope\}/);
    expect(bad('    auth: { flow: client_credentials, clientId: a, clientSecret: b }\n    fields: { memo: Call_Memo__c }\n')).toMatch(/crm\.salesforce\.memo: fields\.memo is set/);
    expect(bad('    auth: { flow: jwt_bearer, clientId: a, username: u, privateKey: "${K}" }\n', { K: 'not a key' })).toMatch(/crm\.salesforce\.auth\.privateKey: not a PEM private key/);
    expect(bad('    auth: { flow: client_credentials, clientId: a, clientSecret: b }\n    comment: [{ label: Memo, value: "{CALL_MEMO}" }]\n    variables: [CALL_MEMO]\n')).toBe('no error');
  });
});
