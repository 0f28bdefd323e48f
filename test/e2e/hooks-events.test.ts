import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startQueueAgent, type QueueAgent } from '../helpers/agent.js';
import { startHookReceiver, type HookReceiver, type ReceivedRequest } from '../helpers/hook-receiver.js';
import { startWithConfig, type LogLine, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';

/**
 * Hooks on the call events of real SIP calls through the real Asterisk: the lifecycle of a call a
 * queue agent (a second SIPp) answers, and of one abandoned in the queue; ordering with
 * extraction; conditions; escaping of hostile caller IDs; inline hooks on a live call.
 */
const DID = '+81501234567';
const CALLER = '+819011112222';

let rx: HookReceiver;
let service: RunningService | undefined;
let agent: QueueAgent | undefined;

async function start(hooksYaml: string, stages = 'stages:\n  hooks:\n    - continue: {}\n'): Promise<RunningService> {
  service = await startWithConfig(`${stages}hooks:\n${hooksYaml.replaceAll('RX', rx.url)}`);
  return service;
}

async function hookLog(s: RunningService, query: string): Promise<{ total: number; entries: Array<Record<string, any>> }> {
  const res = await fetch(`${s.url}/hooks/log${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

const json = (r: ReceivedRequest) => {
  if (r.parsed.kind !== 'json') throw new Error(`not JSON: ${r.invalid ?? r.raw}`);
  return r.parsed.value as Record<string, string>;
};

function call(scenario: string, service: string, from = CALLER, fromName = 'Test Caller') {
  return runSipp({ scenario, service, from, fromName, timeoutMs: 40_000 });
}

/** Waits until the service has no hook run left to do. */
async function settled(s: RunningService, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const h = (await (await fetch(`${s.url}/health`)).json()) as { hooks: { backlog: number } };
    if (h.hooks.backlog === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('hook runs still pending');
}

beforeAll(async () => {
  rx = await startHookReceiver();
});
afterAll(async () => {
  await rx.close();
});
// The service first: stopping the agent waits on Asterisk and may throw.
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
  await agent?.stop();
  agent = undefined;
});

describe('call events → hooks, on the real PBX', () => {
  it('call start, queue join, answer and end fire once for a call an agent answers; abandon and end once for a call abandoned in the queue', async () => {
    const body = (kind: string, extra = '') =>
      `'{"kind":"${kind}","callId":"{callId}","caller":"{caller}","did":"{did}"${extra}}'`;
    const hook = (kind: string, extra = '') =>
      `  - { name: ${kind}, on: ${kind}, numbers: ["${DID}"], request: { url: "RX/life/${kind}", headers: { Content-Type: application/json }, body: ${body(kind, extra)} } }\n`;
    const s = await start(
      hook('call.start') +
        hook('queue.join', ',"queue":"{queue}","position":"{position}"') +
        hook('call.answer', ',"by":"{answeredBy}","after":"{answerSeconds}"') +
        hook('queue.abandon', ',"queue":"{queue}","wait":"{wait}"') +
        hook('queue.key-exit') +
        hook('call.end', ',"duration":"{duration}","talk":"{talkSeconds}","answered":"{answered}","cause":"{cause}","causeText":"{causeText}"'),
    );
    for (const k of ['call.start', 'queue.join', 'call.answer', 'queue.abandon', 'queue.key-exit', 'call.end']) rx.setDefault(`/life/${k}`, { body: '{}' });
    const seen = (callId: string) => rx.requests.filter((r) => r.path.startsWith('/life/') && json(r).callId === callId).map((r) => json(r));

    agent = await startQueueAgent();
    await agent.ready();
    const answered = await call('call_until_bye', DID);
    expect(answered.code, answered.stdout + answered.stderr).toBe(0);
    await agent.stop();
    agent = undefined;
    await s.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'call.end');

    const abandoned = await call('queue_abandon', DID, '+819033334444');
    expect(abandoned.code, abandoned.stdout).toBe(0);
    await s.waitForLog(() => s.lines.filter((l) => l.msg === 'hook ok' && l.hook === 'call.end').length === 2);
    await settled(s);

    const starts = rx.requests.filter((r) => r.path === '/life/call.start').map(json);
    expect(starts).toHaveLength(2);
    const [first, second] = starts;
    expect(first).toMatchObject({ caller: CALLER, did: DID });
    expect(second).toMatchObject({ caller: '+819033334444', did: DID });

    const a = seen(first!.callId!);
    expect(a.map((e) => e.kind)).toEqual(['call.start', 'queue.join', 'call.answer', 'call.end']);
    expect(a[1]).toMatchObject({ queue: 'support', position: '1' });
    expect(a[2]!.by).toBeTruthy();
    expect(a[3]).toMatchObject({ answered: 'yes', cause: '16', causeText: 'Normal Clearing' });
    expect(Number(a[3]!.talk)).toBeGreaterThanOrEqual(1);
    expect(Number(a[3]!.duration)).toBeGreaterThanOrEqual(Number(a[3]!.talk));

    const b = seen(second!.callId!);
    expect(b.map((e) => e.kind)).toEqual(['call.start', 'queue.join', 'queue.abandon', 'call.end']);
    expect(Number(b[2]!.wait)).toBeGreaterThanOrEqual(2);
    // Asterisk reports cause 0 for a caller who hangs up in a queue
    expect(b[3]).toMatchObject({ answered: 'no', talk: '0', cause: '0' });
    expect(rx.to('/life/queue.key-exit')).toHaveLength(0);
  });

  it('three hooks on call end run in their order; the second extracts a value that the third sends; a hook whose condition fails does not run', async () => {
    const s = await start(`
  - { name: third, on: call.end, order: 3, request: { url: "RX/chain/3", headers: { Content-Type: application/json }, body: '{"ticket":"{ticket}","caller":"{caller}"}' } }
  - { name: first, on: call.end, order: 1, request: { url: "RX/chain/1", body: { caller: "{caller}", duration: "{duration}" } } }
  - { name: uk-only, on: call.end, order: 2, when: { value: "{caller}", match: "/^\\\\+44/" }, request: { url: "RX/chain/uk" } }
  - { name: second, on: call.end, order: 2, request: { url: "RX/chain/2", method: GET, body: { caller: "{caller}" } }, extract: { ticket: "/<ticket>(\\\\d+)</ticket>/" } }
`);
    rx.enqueue('/chain/1', { body: '{}', delayMs: 400 });
    rx.setDefault('/chain/2', { body: '<result><ticket>8842</ticket></result>', headers: { 'content-type': 'application/xml' } });
    rx.setDefault('/chain/3', { body: '{}' });
    rx.setDefault('/chain/uk', { body: '{}' });
    const c = await call('call_until_bye', '120');
    expect(c.code, c.stdout).toBe(0);
    const entered = await s.waitForLog((l) => l.msg === 'stage entered');
    await s.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'third');

    const chain = rx.requests.filter((r) => r.path.startsWith('/chain/'));
    expect(chain.map((r) => r.path)).toEqual(['/chain/1', '/chain/2', '/chain/3']);
    expect(chain[1]!.query.get('caller')).toBe(CALLER);
    expect(json(chain[2]!)).toEqual({ ticket: '8842', caller: CALLER });
    // each starts only after the one before has answered (the first took 400 ms)
    expect(chain[1]!.at - chain[0]!.at).toBeGreaterThanOrEqual(390);

    const log = await hookLog(s, `?callId=${encodeURIComponent(String(entered.callId))}`);
    expect(log.entries.map((e) => [e.hook, e.status])).toEqual([
      ['first', 'ok'],
      ['uk-only', 'skipped'],
      ['second', 'ok'],
      ['third', 'ok'],
    ]);
    expect(log.entries[1]!.reason).toBe(`condition not met: "${CALLER}" does not match /^\\+44/`);
    expect(log.entries[1]!.attemptLog).toEqual([]);
    expect(log.entries[2]!.extracted).toEqual({ ticket: '8842' });
    expect(rx.to('/chain/uk')).toHaveLength(0);
    // per hook, too
    expect((await hookLog(s, '?hook=uk-only')).entries.map((e) => e.status)).toEqual(['skipped']);
  });

  it('caller IDs holding &, ", <, a newline and non-ASCII give valid form, JSON and XML bodies', async () => {
    const s = await start(`
  - { name: form, on: stage.entered, request: { url: "RX/esc/form", body: "caller={caller}&name={callerName}&stage={stage}" } }
  - { name: json, on: stage.entered, request: { url: "RX/esc/json", headers: { Content-Type: application/json }, body: '{"caller":"{caller}","name":"{callerName}"}' } }
  - { name: xml, on: stage.entered, request: { url: "RX/esc/xml", headers: { Content-Type: application/xml }, body: '<?xml version="1.0"?><call caller="{caller}"><caller>{caller}</caller><name>{callerName}</name></call>' } }
`);
    for (const p of ['/esc/form', '/esc/json', '/esc/xml']) rx.setDefault(p, { body: '{}' });
    // Asterisk decodes the From user's %-escapes: & " < LF and UTF-8
    const c = await call('call_until_bye', '120', '+8190%26x%22y%3Cz%0Aw%E6%97%A5', 'Zoë \\"Z\\" <&> 日本');
    expect(c.code, c.stdout).toBe(0);
    await s.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'xml');
    await settled(s);

    const runs = (await hookLog(s, '?hook=form')).entries;
    const { caller, callerName } = runs[0]!.vars as { caller: string; callerName: string };
    for (const ch of ['&', '"', '<', '\n', '日']) expect(caller).toContain(ch);
    for (const ch of ['&', '"', '<', 'ë', '日']) expect(callerName).toContain(ch);

    const form = rx.to('/esc/form')[0]!;
    expect(form.invalid).toBeUndefined();
    expect(form.parsed).toEqual({ kind: 'form', fields: { caller, name: callerName, stage: 'hooks' } });
    expect(rx.to('/esc/json')[0]!.parsed).toEqual({ kind: 'json', value: { caller, name: callerName } });
    const xml = rx.to('/esc/xml')[0]!;
    if (xml.parsed.kind !== 'xml') throw new Error(`XML refused: ${xml.invalid}\n${xml.raw}`);
    expect(xml.parsed.root.attributes.caller).toBe(caller);
    expect(xml.parsed.root.children.map((e) => [e.name, e.text])).toEqual([['caller', caller], ['name', callerName]]);
  });

  it('inline hooks on a live call: the caller waits for the answer, the next step and a later hook use what it extracted', async () => {
    let n = 0;
    rx.setDefault('/inline/lookup', () => ({ body: JSON.stringify({ id: `C-${++n}` }) }));
    rx.setDefault('/inline/notify', { body: '{}' });
    rx.setDefault('/inline/end', { body: '{}' });
    const s = await start(
      `
  - { name: lookup, on: inline, request: { url: "RX/inline/lookup", method: GET, body: { caller: "{caller}" }, timeout: 2s }, extract: { crmId: "$.id" } }
  - { name: notify, on: inline, request: { url: "RX/inline/notify", headers: { Content-Type: application/json }, body: '{"crm":"{crmId}"}', timeout: 2s } }
  - { name: end-report, on: call.end, request: { url: "RX/inline/end", body: { crm: "{crmId}", caller: "{caller}" } } }
`,
      'stages:\n  hooks:\n    - hook: lookup\n    - hook: notify\n    - continue: {}\n',
    );
    const calls = 10;
    for (let i = 0; i < calls; i++) {
      const c = await call('call_until_bye', '120');
      expect(c.code, c.stdout).toBe(0);
    }
    await s.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'end-report' && s.lines.filter((x) => x.msg === 'hook ok' && x.hook === 'end-report').length === calls, 20_000);
    expect(rx.to('/inline/notify').map((r) => json(r).crm)).toEqual(Array.from({ length: calls }, (_, i) => `C-${i + 1}`));
    expect(rx.to('/inline/end').map((r) => (r.parsed.kind === 'form' ? r.parsed.fields.crm : '')).sort()).toEqual(
      Array.from({ length: calls }, (_, i) => `C-${i + 1}`).sort(),
    );

    // the added latency: the whole hook step, as the caller waits for it (request, answer, log writes)
    const done = (await s.settled()).filter((l: LogLine) => l.msg === 'inline hook done' && l.hook === 'lookup').map((l) => Number(l.durationMs));
    expect(done).toHaveLength(calls);
    const sorted = [...done].sort((x, y) => x - y);
    const median = sorted[Math.floor(calls / 2)]!;
    const http = (await s.settled()).filter((l) => l.msg === 'hook ok' && l.hook === 'lookup').map((l) => Number(l.latencyMs)).sort((x, y) => x - y);
    process.stdout.write(
      `inline hook step on a live call: median ${median} ms, max ${sorted.at(-1)} ms over ${calls} calls (${sorted.join(', ')}); ` +
        `of which the HTTP exchange: median ${http[Math.floor(calls / 2)]} ms\n`,
    );
    expect(median).toBeLessThan(100);
    const log = await hookLog(s, '?hook=lookup');
    expect(log.entries.every((e) => e.mode === 'inline' && e.status === 'ok')).toBe(true);
  });

  it('a hook that keeps failing raises a warning in /health', async () => {
    rx.setDefault('/down', { status: 503, body: 'maintenance' });
    const s = await start(`
  - { name: crm-down, on: stage.entered, request: { url: "RX/down" }, retry: { count: 0, interval: 1s } }
`);
    for (let i = 0; i < 3; i++) expect((await call('call_until_bye', '120')).code).toBe(0);
    await settled(s);
    const res = await fetch(`${s.url}/health`);
    expect(res.status).toBe(200);
    const h = (await res.json()) as { ok: boolean; warnings: string[]; hooks: { failing: Array<{ hook: string; consecutiveFailures: number }> } };
    expect(h.ok).toBe(true);
    expect(h.hooks.failing).toEqual([expect.objectContaining({ hook: 'crm-down', consecutiveFailures: 3 })]);
    expect(h.warnings).toEqual([expect.stringMatching(/^hook "crm-down" failed 3 times in a row \(last: http-503/)]);
  });
});
