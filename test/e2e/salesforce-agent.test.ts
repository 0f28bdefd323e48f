import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSalesforce, type SalesforceStandIn, type SfTask } from '../standins/salesforce.js';
import { startQueueAgent, type QueueAgent } from '../helpers/agent.js';
import { AmiLog } from '../helpers/ami-log.js';
import { asteriskCli, readAsteriskEnv } from '../helpers/asterisk.js';
import { startCarrier, type Carrier } from '../helpers/carrier.js';
import { startDevice, type Device } from '../helpers/device.js';
import { baseConfig, freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';

/**
 * Who answered, for every way a call reaches a person on the real PBX (issue 18): a device dialled
 * directly, the same device through a trunk and through a Local channel, a static, a dynamic and a
 * realtime queue member, a blind transfer from one phone to another, and a call picked up by another phone.
 * Each call's Task comment carries `{agent}` (and `{firstAgent}`, `{agentName}`), checked in the
 * Salesforce stand-in. The office phones 2601 and 2602 are SIPp servers (test/helpers/device.ts);
 * the DIDs 0120556601… are in docker/asterisk/conf/extensions_salesforce-test.conf.
 */

const CALLER = '+81354127788';

let sf: SalesforceStandIn;
let service: RunningService | undefined;
let ami: AmiLog | undefined;
const devices: Array<Device | Carrier | QueueAgent> = [];

beforeAll(async () => {
  sf = await startSalesforce({
    taskFields: { text: ['Call_Memo__c'] },
    records: [{ type: 'Contact', Name: 'Kenji Caller', phones: { Phone: '03-5412-7788' } }],
    users: [
      { Name: 'Taro Tanaka', Extension: '2601' },
      { Name: 'Hanako Sato', Extension: '2602' },
      { Name: 'Retired Agent', Extension: '2699', IsActive: false },
    ],
  });
});
afterAll(async () => {
  await sf.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
  for (const d of devices.splice(0)) await d.stop();
  await ami?.close();
  ami = undefined;
});

function yaml(extra = ''): string {
  return `crm:
  salesforce:
    instanceUrl: ${sf.url}
    auth: { flow: client_credentials, clientId: "${sf.clientId}", clientSecret: "\${SF_CLIENT_SECRET}" }
    comment:
      - { label: Number, value: "{number.e164}" }
      - { label: Agent, value: "{agent}" }
      - { label: First agent, value: "{firstAgent}" }
      - { label: Member, value: "{agentName}" }
    defaultCountry: JP
    retry: { interval: 500ms, maxInterval: 1s }
${extra}`;
}

async function start(extra = ''): Promise<RunningService> {
  const dir = serviceDir();
  const port = freePort();
  service = await startService({ dir, port, config: baseConfig(dir, port, yaml(extra)), env: { SF_CLIENT_SECRET: sf.clientSecret } });
  ami = await AmiLog.open();
  return service;
}

/** The next Task, once its activity is logged; on a timeout, what the service and AMI said. */
async function nextTask(s: RunningService, known: number): Promise<SfTask> {
  await sf.waitFor(() => sf.tasks.length > known, 20_000, 'a new Task').catch((e: Error) => {
    throw new Error(`${e.message}; the service's last lines:\n${s.lines.slice(-12).map((l) => JSON.stringify(l)).join('\n')}`);
  });
  const task = sf.tasks[known]!;
  await s.waitForLog((l) => l.msg === 'salesforce activity logged' && l.callId === task.fields.CallObject, 20_000);
  return task;
}

/** The comment's lines as label → value. */
function comment(task: SfTask): Record<string, string> {
  return Object.fromEntries(String(task.fields.Description ?? '').split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
}

/** The AMI events of one call that tell who answered, for a failure message. */
function transcript(callId: string): string {
  const names = new Set(['DialEnd', 'AgentConnect', 'Pickup', 'BlindTransfer', 'AttendedTransfer']);
  return (ami?.events ?? [])
    .filter((e) => names.has(e.event ?? '') && [e.linkedid, e.targetlinkedid, e.transfereelinkedid, e.transfererlinkedid].includes(callId))
    .map((e) => JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => /^(event|channel|destchannel|dialstring|dialstatus|destcalleridnum|destuniqueid|interface|membername|targetchannel|targetuniqueid|transfereechannel|transfertargetchannel|result|uniqueid|linkedid)$/.test(k)))))
    .join('\n');
}

async function call(did: string) {
  const r = await runSipp({ scenario: 'call_until_bye', service: did, from: CALLER, fromName: 'Kenji', timeoutMs: 40_000 });
  expect(r.code, r.stdout).toBe(0);
}

/** Calls a DID and waits for its Task: the comment's agent lines are returned with it. */
async function callAndLog(s: RunningService, did: string, want: Record<string, string | undefined>): Promise<SfTask> {
  const known = sf.tasks.length;
  await call(did);
  return expectAgent(s, known, want);
}

async function expectAgent(s: RunningService, known: number, want: Record<string, string | undefined>): Promise<SfTask> {
  const task = await nextTask(s, known);
  const lines = comment(task);
  const got = { agent: lines.Agent, firstAgent: lines['First agent'], agentName: lines.Member };
  expect(got, transcript(String(task.fields.CallObject))).toEqual({ agent: want.agent, firstAgent: want.firstAgent ?? want.agent, agentName: want.agentName });
  expect(lines.Number).toBe(CALLER);
  return task;
}

describe('{agent}: the device or queue member that answered', () => {
  it('a device dialled directly (Dial(PJSIP/2601)) — not the DID the caller dialled', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'answer'));
    await callAndLog(s, '0120556601', { agent: '2601' });
  });

  it('the device behind a trunk (Dial(PJSIP/2601@carrier)): the dial string names it, not the trunk', async () => {
    const s = await start();
    devices.push(await startCarrier('agent_answer'));
    await callAndLog(s, '0120556602', { agent: '2601' });
  });

  it('a Local channel that ends on the device (Dial(Local/2601@sf-office)): the device, not the Local channel', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'answer'));
    await callAndLog(s, '0120556603', { agent: '2601' });
  });

  it('a static queue member (queues.conf member => PJSIP/agent,0,Agent): the device and the member name', async () => {
    const s = await start();
    const agent = await startQueueAgent();
    devices.push(agent);
    await agent.ready();
    await callAndLog(s, '100', { agent: 'agent', agentName: 'Agent' });
  });

  it('a dynamic queue member (QueueAdd at run time)', async () => {
    const s = await start();
    devices.push(await startDevice('2602', 'answer'));
    const added = await ami!.action({ Action: 'QueueAdd', Queue: 'sf-team', Interface: 'PJSIP/2602', MemberName: 'Hanako Sato' });
    expect(added.response, JSON.stringify(added)).toBe('Success');
    try {
      await callAndLog(s, '0120556604', { agent: '2602', agentName: 'Hanako Sato' });
    } finally {
      await ami!.action({ Action: 'QueueRemove', Queue: 'sf-team', Interface: 'PJSIP/2602' });
    }
  });

  it('a realtime queue member (extconfig.conf queue_members => sqlite3): read from the database when the caller joins', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'answer'));
    // the row a call centre's own tooling would write; Asterisk reads it when the caller joins sf-rt
    const db = new Database(join(readAsteriskEnv().root, 'var/lib/asterisk/realtime.sqlite3'), { timeout: 5_000 });
    try {
      // Asterisk creates the table with only the columns app_queue writes (paused, uniqueid, reason_paused)
      // when it finds none at start: the members' own columns come from the call centre's schema
      const columns = db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'queue_members\')').all().map((c) => c.name);
      if (!columns.includes('queue_name')) db.exec('DROP TABLE IF EXISTS queue_members');
      db.exec(`CREATE TABLE IF NOT EXISTS queue_members (uniqueid INTEGER PRIMARY KEY, queue_name TEXT NOT NULL, interface TEXT NOT NULL,
        membername TEXT, state_interface TEXT, penalty INTEGER, paused INTEGER, wrapuptime INTEGER, ringinuse INTEGER, reason_paused TEXT)`);
      db.prepare('DELETE FROM queue_members WHERE queue_name = ?').run('sf-rt');
      db.prepare('INSERT INTO queue_members (queue_name, interface, membername, penalty, paused) VALUES (?, ?, ?, 0, 0)').run('sf-rt', 'PJSIP/2601', 'Taro Tanaka (realtime)');
    } finally {
      db.close();
    }
    await callAndLog(s, '0120556607', { agent: '2601', agentName: 'Taro Tanaka (realtime)' });
    // the member really came from realtime: Asterisk says so
    expect(await asteriskCli('queue show sf-rt')).toMatch(/Taro Tanaka \(realtime\) \(PJSIP\/2601\).*\(realtime\)/);
  });

  it('a blind transfer from one phone to another (REFER): the last one that talked, the first kept as {firstAgent}', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'transfer'), await startDevice('2602', 'answer'));
    const task = await callAndLog(s, '0120556601', { agent: '2602', firstAgent: '2601' });
    expect(ami!.events.some((e) => e.event === 'BlindTransfer' && e.transfererlinkedid === task.fields.CallObject), transcript(String(task.fields.CallObject))).toBe(true);
  });

  it('an attended transfer (the phone keys *2 2602 #, then hangs up): the target becomes {agent}, the first stays {firstAgent}', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'attended'), await startDevice('2602', 'answer'));
    const task = await callAndLog(s, '0120556608', { agent: '2602', firstAgent: '2601' });
    expect(ami!.events.some((e) => e.event === 'AttendedTransfer' && e.result === 'Success' && e.transfereelinkedid === task.fields.CallObject), transcript(String(task.fields.CallObject))).toBe(true);
  });

  it('a call picked up by another phone (Pickup()): the phone that picked up, not the one that rang', async () => {
    const s = await start();
    devices.push(await startDevice('2601', 'ring'));
    const known = sf.tasks.length;
    const calling = call('0120556605');
    await ami!.waitFor((e) => e.event === 'DialBegin' && /^PJSIP\/2601-/.test(e.destchannel ?? ''), 10_000, 'phone 2601 ringing');
    await new Promise((r) => setTimeout(r, 500));
    const pick = await runSipp({ scenario: 'call_talk_bye', service: '*8', from: '2602', fromName: 'Hanako', localPort: 5071, timeoutMs: 20_000 });
    expect(pick.code, pick.stdout).toBe(0);
    await calling;
    const task = await expectAgent(s, known, { agent: '2602' });
    expect(ami!.events.some((e) => e.event === 'Pickup' && e.targetlinkedid === task.fields.CallObject), transcript(String(task.fields.CallObject))).toBe(true);
  });
});

describe('the Task belongs to the agent who answered (owners)', () => {
  it('looked up once by User.Extension and cached; OwnerId checked by the stand-in', async () => {
    const s = await start('    owners: { lookup: { field: Extension } }\n');
    devices.push(await startDevice('2601', 'answer'));
    const taro = sf.users.find((u) => u.Name === 'Taro Tanaka')!.Id;
    const before = sf.dataRequests().length;
    let task = await callAndLog(s, '0120556601', { agent: '2601' });
    expect(task.fields.OwnerId).toBe(taro);
    const sent = sf.dataRequests().slice(before);
    expect(sent.map((r) => r.kind)).toEqual(['search', 'query', 'create']);
    expect(sent[1]!.q).toBe("SELECT Id FROM User WHERE Extension = '2601' AND IsActive = true LIMIT 2");
    const owner = (await s.settled()).find((l) => l.msg === 'salesforce Task owner' && l.callId === task.fields.CallObject);
    expect(owner).toMatchObject({ agent: '2601', owner: taro, reason: 'lookup: User.Extension = 2601' });
    // the second call: the cached answer, no query (and the contact from the match cache: no search)
    const again = sf.dataRequests().length;
    task = await callAndLog(s, '0120556601', { agent: '2601' });
    expect(task.fields.OwnerId).toBe(taro);
    expect(sf.dataRequests().slice(again).map((r) => r.kind)).toEqual(['create']);
  });

  it('an agent no User matches: the integration user owns the Task, and the log says why', async () => {
    const s = await start('    owners: { map: { "2699": ' + JSON.stringify(sf.users.find((u) => u.Name === 'Retired Agent')!.Id) + ' }, lookup: { field: FederationIdentifier } }\n');
    devices.push(await startDevice('2601', 'answer'));
    const task = await callAndLog(s, '0120556601', { agent: '2601' });
    expect(task.fields.OwnerId).toBe(sf.integrationUserId);
    const line = (await s.settled()).find((l) => String(l.msg).startsWith('salesforce Task owner') && l.callId === task.fields.CallObject);
    expect(line).toMatchObject({ level: 'warn', agent: '2601', owner: 'integration user', reason: 'no active User has FederationIdentifier = 2601' });
  });
});

describe('a memo after the call', () => {
  it('by the admin API and by an AMI UserEvent from the phone: the Task is updated once per new memo, counted', async () => {
    const s = await start('    fields: { memo: Call_Memo__c }\n    memo: "{memo}"\n');
    devices.push(await startDevice('2601', 'answer'));
    const task = await callAndLog(s, '0120556606', { agent: '2601' });
    const callId = String(task.fields.CallObject);
    expect(task.fields).not.toHaveProperty('Call_Memo__c');
    const post = async (body: unknown) => {
      const res = await fetch(`${s.url}/salesforce/memo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    // the session expired meanwhile: the PATCH is refused once (401), renewed, sent again
    sf.expireTokens();
    const before = sf.dataRequests().length;
    expect(await post({ callId, memo: 'Wants a quote' })).toEqual({ status: 200, body: { callId, changed: true } });
    await sf.waitFor(() => task.updates.length === 1, 10_000, 'the memo update');
    expect(await post({ callId, memo: 'Wants a quote' })).toEqual({ status: 200, body: { callId, changed: false } });
    expect(task.updates[0]!.fields).toMatchObject({ Call_Memo__c: 'Wants a quote' });
    expect(await post({ callId: '1.2', memo: 'x' })).toMatchObject({ status: 404 });
    expect(await post({ callId })).toMatchObject({ status: 400 });

    // the phone dials *5 and a code after the call: the dialplan sends UserEvent(CallActionsMemo,CallId: …,Memo: code 12)
    for (let i = 0; i < 2; i++) {
      const r = await runSipp({ scenario: 'call_until_bye', service: '*512', from: '2601', fromName: 'Taro', localPort: 5071, timeoutMs: 20_000 });
      expect(r.code, r.stdout).toBe(0);
      await s.waitForLog((l) => l.msg === 'salesforce memo' && l.via === 'ami' && l.result === (i === 0 ? 'changed' : 'unchanged'), 10_000);
    }
    await sf.waitFor(() => task.updates.length === 2, 10_000, 'the memo from the phone');
    await s.waitForLog((l) => l.msg === 'salesforce activity logged' && l.callId === callId && l.apiCalls === 4, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(task.updates).toHaveLength(2);
    expect(task.fields.Call_Memo__c).toBe('code 12');
    expect(sf.dataRequests().slice(before).map((r) => `${r.kind} ${r.status}`)).toEqual(['update 401', 'update 204', 'update 204']);

    const entry = ((await (await fetch(`${s.url}/salesforce/activities?callId=${encodeURIComponent(callId)}`)).json()) as { entries: Array<Record<string, unknown>> }).entries[0]!;
    // search + create + two memo updates; the refused PATCH apart
    expect(entry).toMatchObject({ status: 'done', apiCalls: 4, refusedCalls: 1, memo: 'code 12' });
    const health = (await (await fetch(`${s.url}/health`)).json()) as { salesforce: Record<string, unknown> };
    expect(health.salesforce).toMatchObject({ apiCallsPerCall: 4, refusedLastDay: 1 });
  });
});
