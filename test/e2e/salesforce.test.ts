import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSalesforce, type SalesforceStandIn, type SfTask } from '../standins/salesforce.js';
import { startQueueAgent, type QueueAgent } from '../helpers/agent.js';
import { startCarrier, type Carrier } from '../helpers/carrier.js';
import { baseConfig, freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';

/**
 * Salesforce activity logging for real SIP calls through the real Asterisk (issue 6): an inbound
 * call a queue agent answers, one the caller gives up on, an outbound call from the internal phone
 * "staff" through the "carrier" trunk that is answered and one that is not (placed by
 * click-to-call) — one Task each, checked in the Salesforce stand-in. Then a Task created at the
 * start of a call and updated at its end while the token expires and the org hits its limit, and
 * a service killed during a create.
 */

const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();
const CONTACT_CALLER = '+18005551212';
const LEAD_CALLER = '+819099990000';
const ACCOUNT_NUMBER = '+442079460000';
const UNKNOWN_NUMBER = '+15550001111';

let sf: SalesforceStandIn;
let service: RunningService | undefined;
let agent: QueueAgent | undefined;
let carrier: Carrier | undefined;

beforeAll(async () => {
  sf = await startSalesforce({
    taskFields: { dateTime: ['Dial_Start__c', 'Call_Start__c', 'Call_End__c'] },
    records: [
      { type: 'Contact', Name: 'Ann Contact', phones: { Phone: '(800) 555-1212' }, LastModifiedDate: ago(30) },
      { type: 'Lead', Name: 'Lee Lead', phones: { MobilePhone: '+1 800 555 1212' }, LastModifiedDate: ago(1) },
      { type: 'Lead', Name: 'Only Lead', phones: { Phone: '090-9999-0000' }, LastModifiedDate: ago(5) },
      { type: 'Account', Name: 'Switchboard Inc', phones: { Phone: '+44 20 7946 0000' }, LastModifiedDate: ago(3) },
      { type: 'Contact', Name: 'Pat Pipeline', phones: { Phone: '+1 555 000 2222' }, LastModifiedDate: ago(9) },
    ],
  });
});
afterAll(async () => {
  await sf.close();
});
// The service first: stopping the agent waits on Asterisk and may throw.
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
  await agent?.stop();
  agent = undefined;
  await carrier?.stop();
  carrier = undefined;
});

function salesforceYaml(extra = ''): string {
  return `crm:
  salesforce:
    instanceUrl: ${sf.url}
    auth: { flow: client_credentials, clientId: "${sf.clientId}", clientSecret: "\${SF_CLIENT_SECRET}" }
    subject: "{callType} call {number}"
    status: Completed
    fields: { dialStart: Dial_Start__c, callStart: Call_Start__c, callEnd: Call_End__c }
    comment:
      - { label: Number, value: "{number}" }
      - { label: Queue, value: "{queue}" }
      - { label: Answered by, value: "{answeredBy}" }
      - { label: Talk time, value: "{talkSeconds} s" }
    missedComment: "{callType} call, {number}, not answered (rang {duration} s)"
    missedMark: Missed
    outboundContexts: [from-internal]
    defaultCountry: JP
    retry: { interval: 500ms, maxInterval: 1s }
${extra}`;
}

async function start(extra = ''): Promise<RunningService> {
  const dir = serviceDir();
  const port = freePort();
  service = await startService({ dir, port, config: baseConfig(dir, port, salesforceYaml(extra)), env: { SF_CLIENT_SECRET: sf.clientSecret } });
  return service;
}

const record = (name: string) => sf.records.find((r) => r.Name === name)!;

/** The next Task the stand-in gets, once its activity is logged. */
async function nextTask(s: RunningService, known: number): Promise<{ task: SfTask; activity: Record<string, any> }> {
  await sf.waitFor(() => sf.tasks.length > known, 20_000, 'a new Task').catch((e: Error) => {
    throw new Error(`${e.message}; the service's last lines:\n${s.lines.slice(-12).map((l) => JSON.stringify(l)).join('\n')}`);
  });
  const task = sf.tasks[known]!;
  const callId = String(task.fields.CallObject);
  await s.waitForLog((l) => l.msg === 'salesforce activity logged' && l.callId === callId, 20_000);
  const res = await fetch(`${s.url}/salesforce/activities?callId=${encodeURIComponent(callId)}`);
  const body = (await res.json()) as { entries: Array<Record<string, any>> };
  return { task, activity: body.entries[0]! };
}

function times(task: SfTask) {
  const t = (k: string) => (task.fields[k] === undefined ? undefined : Date.parse(String(task.fields[k])));
  return { dial: t('Dial_Start__c')!, answer: t('Call_Start__c'), end: t('Call_End__c')! };
}

describe('Salesforce activity logging on the real PBX', () => {
  it('four calls, one Task each: inbound answered, inbound missed, outbound answered, outbound not answered (click-to-call)', async () => {
    const s = await start();

    // 1. inbound, answered by the queue agent: the number is on a Contact and a Lead → the Contact
    agent = await startQueueAgent();
    await agent.ready();
    let before = sf.dataRequests().length;
    let t0 = Date.now();
    const answered = await runSipp({ scenario: 'call_until_bye', service: '100', from: CONTACT_CALLER, fromName: 'Ann', timeoutMs: 30_000 });
    expect(answered.code, answered.stdout).toBe(0);
    let { task, activity } = await nextTask(s, 0);
    expect(task.fields).toMatchObject({
      Subject: `Inbound call ${CONTACT_CALLER}`,
      Status: 'Completed',
      TaskSubtype: 'Call',
      CallType: 'Inbound',
      CallDisposition: 'Answered',
      WhoId: record('Ann Contact').Id,
    });
    let tm = times(task);
    expect(tm.dial).toBeGreaterThanOrEqual(t0 - 1000);
    expect(tm.answer! - tm.dial).toBeGreaterThanOrEqual(200);
    // the agent talks 2 s, then hangs up
    expect(tm.end - tm.answer!).toBeGreaterThanOrEqual(1500);
    expect(tm.end).toBeLessThanOrEqual(Date.now());
    expect(task.fields.CallDurationInSeconds).toBeGreaterThanOrEqual(2);
    expect(task.fields.CallDurationInSeconds).toBeLessThanOrEqual(4);
    expect(task.fields.Description).toMatch(new RegExp(`^Number: \\${CONTACT_CALLER}\\nQueue: support\\nAnswered by: .+\\nTalk time: \\d s$`));
    // one search, one create: asserted from what the stand-in received
    expect(sf.dataRequests().slice(before).map((r) => r.kind)).toEqual(['search', 'create']);
    expect(activity).toMatchObject({ status: 'done', matchRule: 'contact', recordType: 'Contact', apiCalls: 2 });
    expect((await s.settled()).find((l) => l.msg === 'salesforce record matched' && l.callId === task.fields.CallObject)).toMatchObject({ rule: 'contact' });
    await agent.stop();
    agent = undefined;

    // 2. inbound, missed: the caller gives up in the queue after 3 s; the number is only on a Lead
    // (typed as 090-9999-0000, found from +819099990000)
    before = sf.dataRequests().length;
    const missed = await runSipp({ scenario: 'queue_abandon', service: '100', from: LEAD_CALLER, fromName: 'Lee', timeoutMs: 30_000 });
    expect(missed.code, missed.stdout).toBe(0);
    ({ task, activity } = await nextTask(s, 1));
    expect(task.fields).toMatchObject({
      Subject: `Inbound call ${LEAD_CALLER}`,
      CallType: 'Inbound',
      CallDisposition: 'Missed',
      CallDurationInSeconds: 0,
      WhoId: record('Only Lead').Id,
    });
    expect(task.fields.Description).toMatch(new RegExp(`^Missed\\nInbound call, \\${LEAD_CALLER}, not answered \\(rang [3-6] s\\)$`));
    tm = times(task);
    expect(tm.answer).toBeUndefined();
    expect(tm.end - tm.dial).toBeGreaterThanOrEqual(2500);
    expect(sf.dataRequests().slice(before).map((r) => r.kind)).toEqual(['search', 'create']);
    expect(activity).toMatchObject({ matchRule: 'lead', apiCalls: 2 });

    // 3. outbound from the internal phone, answered: the dialled number is on an Account
    carrier = await startCarrier('agent_answer');
    before = sf.dataRequests().length;
    t0 = Date.now();
    const out = await runSipp({ scenario: 'outbound_call', service: ACCOUNT_NUMBER, from: 'staff', fromName: 'Agent', vars: { record: 'none' }, timeoutMs: 30_000 });
    expect(out.code, out.stdout).toBe(0);
    ({ task, activity } = await nextTask(s, 2));
    expect(task.fields).toMatchObject({
      Subject: `Outbound call ${ACCOUNT_NUMBER}`,
      CallType: 'Outbound',
      CallDisposition: 'Answered',
      WhatId: record('Switchboard Inc').Id,
    });
    expect(task.fields.WhoId).toBeUndefined();
    tm = times(task);
    expect(tm.dial).toBeGreaterThanOrEqual(t0 - 1000);
    expect(tm.end - tm.answer!).toBeGreaterThanOrEqual(1500);
    expect(task.fields.CallDurationInSeconds).toBeGreaterThanOrEqual(2);
    expect(task.fields.Description).toMatch(new RegExp(`^Number: \\${ACCOUNT_NUMBER}\\nAnswered by: .*\\nTalk time: \\d s$`));
    expect(sf.dataRequests().slice(before).map((r) => r.kind)).toEqual(['search', 'create']);
    expect(activity).toMatchObject({ matchRule: 'account', apiCalls: 2 });
    await carrier.stop();

    // 4. outbound, not answered, placed by click-to-call from Pat's record: the number is in no
    // record, the Task goes to Pat, and no search is spent
    carrier = await startCarrier('carrier_no_answer');
    before = sf.dataRequests().length;
    const pat = record('Pat Pipeline').Id;
    const unanswered = await runSipp({ scenario: 'outbound_unanswered', service: UNKNOWN_NUMBER, from: 'staff', fromName: 'Agent', vars: { record: pat }, timeoutMs: 30_000 });
    expect(unanswered.code, unanswered.stdout).toBe(0);
    ({ task, activity } = await nextTask(s, 3));
    expect(task.fields).toMatchObject({
      Subject: `Outbound call ${UNKNOWN_NUMBER}`,
      CallType: 'Outbound',
      CallDisposition: 'Missed',
      CallDurationInSeconds: 0,
      WhoId: pat,
    });
    expect(task.fields.Description).toMatch(new RegExp(`^Missed\\nOutbound call, \\${UNKNOWN_NUMBER}, not answered \\(rang [2-5] s\\)$`));
    expect(times(task).answer).toBeUndefined();
    expect(sf.dataRequests().slice(before).map((r) => r.kind)).toEqual(['create']);
    expect(activity).toMatchObject({ matchRule: 'click-to-call', apiCalls: 1 });

    expect(sf.tasks).toHaveLength(4);
    const health = (await (await fetch(`${s.url}/health`)).json()) as { salesforce: Record<string, any>; warnings: string[] };
    expect(health.salesforce).toMatchObject({ backlog: 0, loggedLastDay: 4, failedLastDay: 0, apiCallsPerCall: 1.75 });
    expect(health.salesforce.usage).toMatchObject({ used: sf.usage.used, limit: sf.usage.limit });
    expect(health.warnings).toEqual([]);
  });

  it('created when the agent answers, updated at the end while the token expires and the org hits its limit: one Task', async () => {
    const s = await start('    when: call.answer\n');
    agent = await startQueueAgent();
    await agent.ready();
    const known = sf.tasks.length;
    const before = sf.dataRequests().length;
    const calling = runSipp({ scenario: 'call_until_bye', service: '100', from: CONTACT_CALLER, fromName: 'Ann', timeoutMs: 30_000 });
    // the agent talks 2 s: the Task exists while the call is still on
    await sf.waitFor(() => sf.tasks.length > known, 15_000, 'the Task created at the answer').catch(async (e: Error) => {
      const { asteriskCli } = await import('../helpers/asterisk.js');
      throw new Error(`${e.message}; queue: ${await asteriskCli('queue show support')}; channels: ${await asteriskCli('core show channels')}; the service's last lines:\n${s.lines.slice(-30).map((l) => JSON.stringify(l)).join('\n')}`);
    });
    const task = sf.tasks[known]!;
    expect(task.fields).not.toHaveProperty('Call_End__c');
    expect(task.fields).not.toHaveProperty('CallDisposition');
    sf.expireTokens();
    sf.enqueue({ kind: 'limit' });
    const c = await calling;
    expect(c.code, c.stdout).toBe(0);
    await s.waitForLog((l) => l.msg === 'salesforce activity logged' && l.callId === task.fields.CallObject, 20_000);

    expect(sf.tasks).toHaveLength(known + 1);
    expect(task.updates).toHaveLength(1);
    expect(task.updates[0]!.fields).toMatchObject({ CallDisposition: 'Answered', Call_End__c: expect.any(String) });
    expect(task.fields.CallDurationInSeconds).toBeGreaterThanOrEqual(2);
    // the 401 that renewed the token, the 403 that was retried later
    expect(sf.dataRequests().slice(before).map((r) => `${r.kind} ${r.status}`)).toEqual(['search 200', 'create 201', 'update 401', 'update 403', 'update 204']);
    expect((await s.settled()).some((l) => l.msg === 'salesforce attempt failed, will retry' && /REQUEST_LIMIT_EXCEEDED/.test(String(l.reason)))).toBe(true);
    const health = (await (await fetch(`${s.url}/health`)).json()) as { warnings: string[] };
    expect(health.warnings.join('\n')).toMatch(/REQUEST_LIMIT_EXCEEDED/);
  });

  it('the service is killed while Salesforce holds the create; restarted, it logs the call once', async () => {
    const extra = '    timeout: 1s\n';
    const dir = serviceDir();
    const port = freePort();
    const config = baseConfig(dir, port, salesforceYaml(extra));
    service = await startService({ dir, port, config, env: { SF_CLIENT_SECRET: sf.clientSecret } });
    const known = sf.tasks.length;
    const created = () => sf.dataRequests().filter((r) => r.kind === 'create').length;
    const createsBefore = created();
    // search answered, then the create hangs until the connection goes
    sf.enqueue({ kind: 'ok' }, { kind: 'hang' });
    const c = await runSipp({ scenario: 'queue_abandon', service: '100', from: LEAD_CALLER, fromName: 'Lee', timeoutMs: 30_000 });
    expect(c.code, c.stdout).toBe(0);
    await sf.waitFor(() => created() > createsBefore, 10_000, 'the create');
    await service.kill('SIGKILL');
    service = await startService({ dir, port, config, env: { SF_CLIENT_SECRET: sf.clientSecret } });
    // the restarted service takes the row back when the dead one's lease has run out
    await sf.waitFor(() => sf.tasks.length > known, 20_000, 'the Task after the restart');
    const task = sf.tasks[known]!;
    await service.waitForLog((l) => l.msg === 'salesforce activity logged' && l.callId === task.fields.CallObject, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(sf.tasks.filter((t) => t.fields.CallObject === task.fields.CallObject)).toHaveLength(1);
    expect(task.fields).toMatchObject({ CallDisposition: 'Missed', WhoId: record('Only Lead').Id });
    const res = await fetch(`${service.url}/salesforce/activities?callId=${encodeURIComponent(String(task.fields.CallObject))}`);
    const entry = ((await res.json()) as { entries: Array<Record<string, any>> }).entries[0]!;
    // the match survived the crash: no second search; the cut-off create is looked for first
    expect(entry.attemptLog.map((a: { outcome: string }) => a.outcome)).toEqual(['interrupted', 'ok']);
    expect(entry.attemptLog[1].requests.map((r: { method: string; path: string }) => `${r.method} ${r.path.split('/').slice(4).join('/')}`)).toEqual(['GET query/', 'POST sobjects/Task/']);
  });
});
