import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import type { CallEvent, CallEventKind } from '../../src/asterisk/call-event-types.js';
import type { Hook } from '../../src/hooks/config.js';
import { hookHealth, queryHookLog } from '../../src/hooks/history.js';
import { createHooks } from '../../src/hooks/index.js';
import { verifySignature } from '../../src/hooks/hook-request.js';
import { HookWorker, type SettledRun } from '../../src/hooks/worker.js';
import pino from 'pino';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';

let rx: HookReceiver;
const stores: Store[] = [];
const workers: HookWorker[] = [];
const quiet = pino({ level: 'silent' });

beforeAll(async () => {
  rx = await startHookReceiver();
});
afterAll(async () => {
  await rx.close();
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ graceMs: 100 });
  for (const s of stores.splice(0)) s.close();
});

function hooksOf(yaml: string, env: Record<string, string> = {}): { hooks: Hook[]; secrets: string[] } {
  const text = `asterisk:\n  ari: { user: u, password: p }\nhooks:\n${yaml.replaceAll('RX', rx.url)}`;
  const { value, secrets } = parseConfigText(text, 'test.yaml', rootSchema, env);
  return { hooks: value.hooks, secrets };
}

function newStore(): Store {
  const s = openStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'hooks-')), 'db.sqlite')}`);
  stores.push(s);
  return s;
}

function worker(store: Store, hooks: Hook[], extra: Partial<ConstructorParameters<typeof HookWorker>[0]> = {}): HookWorker {
  const w = new HookWorker({ store, hooks, logger: quiet, ...extra });
  workers.push(w);
  return w;
}

let seq = 0;
function event(kind: CallEventKind, vars: Record<string, string> = {}): CallEvent {
  const callId = `call-${++seq}`;
  const caller = vars.caller ?? '+819012345678';
  return {
    kind,
    callId,
    key: `${callId}/${kind}`,
    at: Date.now(),
    vars: { callId, caller, TEL: caller, callerName: 'Test', called: '+81501234567', did: '+81501234567', channelId: 'c', event: kind, time: new Date().toISOString(), ...vars },
  };
}

function settledOnce(w: HookWorker, n: number, timeoutMs = 10_000): Promise<SettledRun[]> {
  const got: SettledRun[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${n} runs settled: ${JSON.stringify(got)}`)), timeoutMs);
    w.on('settled', (s) => {
      got.push(s);
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('hook worker', () => {
  it('runs three hooks of one event in their order; the second extracts a value the third sends', async () => {
    const { hooks } = hooksOf(`
  - { name: first, on: call.end, order: 1, request: { url: "RX/order/1", body: { caller: "{caller}" } } }
  - { name: third, on: call.end, order: 3, request: { url: "RX/order/3", body: { crm: "{crmId}", ticket: "{ticket}" } } }
  - name: second
    on: call.end
    order: 2
    request: { url: "RX/order/2" }
    extract: { crmId: "$.contact.id", ticket: "/ticket=(\\\\d+)/" }
`);
    // the first answers slowly: order must not depend on who answers first
    rx.enqueue('/order/1', { status: 200, body: '{}', delayMs: 300 });
    rx.setDefault('/order/2', { status: 200, body: '{"contact":{"id":"C-42"},"note":"ticket=777"}' });
    rx.setDefault('/order/3', { status: 200, body: '{}' });
    const store = newStore();
    const w = worker(store, hooks);
    w.start();
    const done = settledOnce(w, 3);
    const ev = event('call.end');
    expect(await w.enqueue(ev)).toHaveLength(3);
    const settled = await done;
    expect(settled.map((s) => [s.hook, s.status])).toEqual([['first', 'ok'], ['second', 'ok'], ['third', 'ok']]);

    const order = rx.requests.filter((r) => r.path.startsWith('/order/')).map((r) => r.path);
    expect(order).toEqual(['/order/1', '/order/2', '/order/3']);
    const third = rx.to('/order/3')[0]!;
    expect(third.parsed).toEqual({ kind: 'form', fields: { crm: 'C-42', ticket: '777' } });
    expect(await w.callVars(ev.callId)).toEqual({ crmId: 'C-42', ticket: '777' });

    const log = await queryHookLog(store, { callId: ev.callId });
    expect(log.entries.map((e) => [e.hook, e.order, e.status])).toEqual([['first', 0, 'ok'], ['second', 1, 'ok'], ['third', 2, 'ok']]);
    expect(log.entries[1]!.extracted).toEqual({ crmId: 'C-42', ticket: '777' });
    expect(log.entries[1]!.attemptLog[0]!.extracted).toEqual({ crmId: 'C-42', ticket: '777' });
    // the same event seen again (AMI and ARI, or after a restart) queues nothing
    expect(await w.enqueue(ev)).toEqual([]);
  });

  it('a call\'s events reach the receiver in order, so call.end can send what call.start got back; other calls do not wait', async () => {
    const { hooks } = hooksOf(`
  - { name: create, on: call.start, request: { url: "RX/crm/create", body: { caller: "{caller}" } }, extract: { record: "$.id" } }
  - { name: close, on: call.end, request: { url: "RX/crm/close", body: { record: "{record}", duration: "{duration}" } } }
`);
    let n = 0;
    rx.setDefault('/crm/create', () => {
      const i = ++n;
      return { body: JSON.stringify({ id: `R-${i}` }), delayMs: i === 1 ? 500 : 0 };
    });
    rx.setDefault('/crm/close', { body: '{}' });
    const w = worker(newStore(), hooks);
    w.start();
    const done = settledOnce(w, 3);
    const slow = event('call.start');
    await w.enqueue(slow);
    await w.enqueue({ ...event('call.end'), callId: slow.callId, key: `${slow.callId}/call.end`, vars: { ...slow.vars, duration: '30' } });
    const fast = event('call.start');
    await w.enqueue(fast);
    const settled = await done;
    // the second call's start did not wait for the first call's slow answer
    expect(settled[0]).toMatchObject({ callId: fast.callId, hook: 'create' });
    const closes = rx.to('/crm/close');
    expect(closes).toHaveLength(1);
    expect(closes[0]!.parsed).toEqual({ kind: 'form', fields: { record: 'R-1', duration: '30' } });
    expect(closes[0]!.at).toBeGreaterThan(rx.to('/crm/create')[0]!.at);
  });

  it('a hook whose condition does not match does not run, and the log says why; a later one tests an earlier result', async () => {
    const { hooks } = hooksOf(`
  - { name: lookup, on: queue.key-exit, request: { url: "RX/cond/lookup" }, extract: { tier: "$.tier" } }
  - { name: sales-only, on: queue.key-exit, when: { value: "{queue}", match: "/^sales$/" }, request: { url: "RX/cond/sales" } }
  - { name: vip-only, on: queue.key-exit, when: { value: "{tier}", match: "/^vip$/" }, request: { url: "RX/cond/vip" } }
`);
    rx.setDefault('/cond/lookup', { body: '{"tier":"vip"}' });
    rx.setDefault('/cond/vip', { body: '{}' });
    rx.setDefault('/cond/sales', { body: '{}' });
    const store = newStore();
    const w = worker(store, hooks);
    w.start();
    const done = settledOnce(w, 3);
    const ev = event('queue.key-exit', { queue: 'support', key: '#', position: '1', wait: '9' });
    await w.enqueue(ev);
    const settled = await done;
    expect(settled.map((s) => [s.hook, s.status])).toEqual([['lookup', 'ok'], ['sales-only', 'skipped'], ['vip-only', 'ok']]);
    expect(rx.to('/cond/sales')).toHaveLength(0);
    expect(rx.to('/cond/vip')).toHaveLength(1);
    const skipped = (await queryHookLog(store, { callId: ev.callId, hook: 'sales-only' })).entries[0]!;
    expect(skipped).toMatchObject({ status: 'skipped', attempts: 0, reason: 'condition not met: "support" does not match /^sales$/' });
    expect(skipped.attemptLog).toEqual([]);
  });

  it('a call to a DID not in `numbers` queues nothing', async () => {
    const { hooks } = hooksOf(`
  - { name: tokyo, on: call.start, numbers: ["+81501234567", "0312345678"], request: { url: "RX/did" } }
`);
    const w = worker(newStore(), hooks, { defaultCountry: 'JP' });
    expect(await w.enqueue(event('call.start', { called: '+81509999999', did: '+81509999999' }))).toEqual([]);
    expect(await w.enqueue(event('call.start', { called: '', did: '' }))).toEqual([]);
    // the same number written nationally still matches
    expect(await w.enqueue(event('call.start', { called: '+81312345678', did: '+81312345678' }))).toHaveLength(1);
    expect(await w.enqueue(event('call.start'))).toHaveLength(1);
  });

  it('the seed rule: /300/ is retried at the interval, with one Idempotency-Key, every attempt logged', async () => {
    const { hooks } = hooksOf(`
  - name: sms
    on: queue.key-exit
    request: { url: "RX/seed", headers: { Content-Type: application/x-www-form-urlencoded }, body: "token=\${AOS_TOKEN}&message=hi&phoneNumber={TEL}", timeout: 2 }
    error: { match: "/300/" }
    retry: { count: 2, interval: 400ms }
`, { AOS_TOKEN: 'tok-secret-1' });
    const quota = { status: 200, body: '{"responseCode":300,"responseMessage":"quota"}' };
    rx.enqueue('/seed', quota, quota);
    rx.setDefault('/seed', { body: '{"responseCode":200}' });
    const store = newStore();
    const w = worker(store, hooks, { secrets: ['tok-secret-1'] });
    w.start();
    const done = settledOnce(w, 1);
    const ev = event('queue.key-exit', { queue: 'support', key: '#', position: '1', wait: '3' });
    await w.enqueue(ev);
    expect((await done)[0]).toMatchObject({ status: 'ok', attempts: 3 });
    const reqs = rx.to('/seed');
    expect(reqs).toHaveLength(3);
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(390);
    expect(reqs[2]!.at - reqs[1]!.at).toBeGreaterThanOrEqual(390);
    expect(new Set(reqs.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(reqs[0]!.parsed).toEqual({ kind: 'form', fields: { token: 'tok-secret-1', message: 'hi', phoneNumber: '+819012345678' } });

    const entry = (await queryHookLog(store, { hook: 'sms', callId: ev.callId })).entries[0]!;
    expect(entry.attemptLog.map((a) => [a.attempt, a.outcome, a.reason])).toEqual([
      [1, 'retry', 'error-match'],
      [2, 'retry', 'error-match'],
      [3, 'ok', 'http-200'],
    ]);
    const first = entry.attemptLog[0]!;
    expect(first.request!.body).toBe('token=[redacted]&message=hi&phoneNumber=%2B819012345678');
    expect(first.request!.headers['idempotency-key']).toBe(entry.id);
    expect(first.response).toMatchObject({ status: 200, body: quota.body });
    expect(first.response!.headers['content-type']).toMatch(/json/);
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(entry)).not.toContain('tok-secret-1');
  });

  it('4xx is final at once; 5xx and timeouts are retried until the count is used up; a hook that keeps failing shows in health', async () => {
    const { hooks } = hooksOf(`
  - { name: auth, on: call.answer, request: { url: "RX/fail/401" }, retry: { count: 3, interval: 10ms } }
  - { name: down, on: call.answer, request: { url: "RX/fail/503" }, retry: { count: 1, interval: 10ms } }
  - { name: slow, on: call.answer, request: { url: "RX/fail/slow", timeout: 150ms }, retry: { count: 1, interval: 10ms } }
  - { name: once, on: call.answer, request: { url: "RX/fail/slow", timeout: 150ms }, error: { timeout: false }, retry: { count: 3, interval: 10ms } }
`);
    rx.setDefault('/fail/401', { status: 401, body: '{"error":"bad token"}' });
    rx.setDefault('/fail/503', { status: 503, body: 'down' });
    rx.setDefault('/fail/slow', { status: 200, body: '{}', delayMs: 600 });
    const store = newStore();
    const w = worker(store, hooks);
    w.start();
    for (let i = 0; i < 3; i++) {
      const done = settledOnce(w, 4);
      await w.enqueue(event('call.answer', { answeredBy: 'PJSIP/agent', answerSeconds: '3' }));
      const s = await done;
      expect(s.map((x) => [x.hook, x.status, x.attempts, x.reason])).toEqual([
        ['auth', 'failed', 1, 'http-401'],
        ['down', 'failed', 2, 'http-503 (no retries left)'],
        ['slow', 'failed', 2, 'timeout (no retries left)'],
        ['once', 'failed', 1, 'timeout'],
      ]);
    }
    const health = await hookHealth(store);
    expect(health.failing.map((f) => [f.hook, f.consecutiveFailures])).toEqual(
      expect.arrayContaining([['auth', 3], ['down', 3], ['slow', 3], ['once', 3]]),
    );
    const warned = await createHooks({ hooks, store, log: quiet }).health();
    expect(warned.warnings).toHaveLength(4);
    expect(warned.warnings[0]).toMatch(/^hook "\w+" failed 3 times in a row \(last: /);
  });

  it('a restart during a retry wait resumes it: the remaining attempts run, none is repeated', async () => {
    const { hooks } = hooksOf(`
  - { name: quota, on: queue.key-exit, request: { url: "RX/restart" }, error: { match: "/300/" }, retry: { count: 2, interval: 700ms } }
`);
    rx.enqueue('/restart', { body: '{"responseCode":300}' }, { body: '{"responseCode":300}' });
    rx.setDefault('/restart', { body: '{"responseCode":200}' });
    const store = newStore();
    const a = worker(store, hooks);
    a.start();
    await a.enqueue(event('queue.key-exit', { queue: 'support', key: '#', position: '1', wait: '1' }));
    await rx.waitFor('/restart', 1);
    await new Promise((r) => setTimeout(r, 100));
    await a.stop();
    const b = worker(store, hooks);
    const done = settledOnce(b, 1);
    b.start();
    expect((await done)[0]).toMatchObject({ status: 'ok', attempts: 3 });
    const reqs = rx.to('/restart');
    expect(reqs).toHaveLength(3);
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(690);
    expect((await queryHookLog(store, { hook: 'quota' })).entries[0]!.attemptLog.map((x) => x.outcome)).toEqual(['retry', 'retry', 'ok']);
  });

  it('a run whose worker died mid-request is taken back after its lease, marked interrupted, and sent again with the same key', async () => {
    const { hooks } = hooksOf(`
  - { name: crash, on: call.start, request: { url: "RX/crash", timeout: 1s } }
`);
    rx.setDefault('/crash', { body: '{}' });
    const store = newStore();
    const w = worker(store, hooks, { leaseMarginMs: 100 });
    const ev = event('call.start');
    const [id] = await w.enqueue(ev);
    // what a worker that crashed after recording its attempt leaves behind
    store.db.prepare(`UPDATE hook_runs SET status = 'sending', attempts = 1, lease_until = ?, claimed_by = 'dead' WHERE id = ?`).run(Date.now() + 300, id);
    store.db.prepare(`INSERT INTO hook_attempts (run_id, attempt, started_at, outcome, worker) VALUES (?, 1, ?, 'sending', 'dead')`).run(id, Date.now());
    const done = settledOnce(w, 1);
    w.start();
    expect((await done)[0]).toMatchObject({ status: 'ok', attempts: 2 });
    const entry = (await queryHookLog(store, { callId: ev.callId })).entries[0]!;
    expect(entry.attemptLog.map((a) => [a.attempt, a.outcome])).toEqual([[1, 'interrupted'], [2, 'ok']]);
    expect(rx.to('/crash').at(-1)!.headers['idempotency-key']).toBe(id);
  });

  it('signs the body with the hook secret (t=…,v1=…) and keeps credentials out of the log', async () => {
    const { hooks, secrets } = hooksOf(`
  - name: signed
    on: call.end
    secret: "\${HOOK_SECRET}"
    request:
      url: "RX/signed?key=\${API_KEY}"
      headers: { Authorization: "Bearer \${API_TOKEN}", Content-Type: application/json }
      body: { caller: "{caller}", duration: "{duration}" }
`, { HOOK_SECRET: 'whsec-0123456789abcdef', API_KEY: 'key-12345678', API_TOKEN: 'tkn-abcdef' });
    rx.setDefault('/signed', { body: '{}' });
    const store = newStore();
    const w = worker(store, hooks, { secrets });
    w.start();
    const done = settledOnce(w, 1);
    const ev = event('call.end', { duration: '61', talkSeconds: '50', answered: 'yes', cause: '16', causeText: 'Normal Clearing' });
    await w.enqueue(ev);
    await done;
    const req = rx.to('/signed')[0]!;
    expect(req.query.get('key')).toBe('key-12345678');
    expect(req.headers.authorization).toBe('Bearer tkn-abcdef');
    expect(req.parsed).toEqual({ kind: 'json', value: { caller: '+819012345678', duration: '61' } });
    expect(verifySignature('whsec-0123456789abcdef', req.headers['call-actions-signature']!, req.raw)).toBe(true);
    expect(verifySignature('whsec-0123456789abcdef', req.headers['call-actions-signature']!, req.raw.replace('61', '62'))).toBe(false);
    const logged = JSON.stringify(await queryHookLog(store, { callId: ev.callId }));
    for (const secret of ['whsec-0123456789abcdef', 'tkn-abcdef', 'key-12345678']) expect(logged).not.toContain(secret);
    expect(logged).toContain('[redacted]');
  });

  it('caller IDs with &, ", <, a newline and non-ASCII give valid form, JSON and XML bodies', async () => {
    const nasty = '+81 "90" <1&2>\n日本\u00e9';
    const name = 'O\'Brien & <Co> "Ltd"\r\n株式会社';
    const { hooks } = hooksOf(`
  - { name: form, on: call.start, request: { url: "RX/esc/form", body: "caller={caller}&name={callerName}&x=1" } }
  - { name: json, on: call.start, request: { url: "RX/esc/json", headers: { Content-Type: application/json }, body: '{"caller":"{caller}","name":"{callerName}"}' } }
  - { name: xml, on: call.start, request: { url: "RX/esc/xml", headers: { Content-Type: application/xml }, body: '<call><caller>{caller}</caller><name a="{callerName}">{callerName}</name></call>' } }
  - { name: fields, on: call.start, request: { url: "RX/esc/xml2", encoding: xml, xmlRoot: call, body: { caller: "{caller}", name: "{callerName}" } } }
  - { name: query, on: call.start, request: { url: "RX/esc/q?c={caller}", method: GET } }
`);
    for (const p of ['/esc/form', '/esc/json', '/esc/xml', '/esc/xml2', '/esc/q']) rx.setDefault(p, { body: '{}' });
    const w = worker(newStore(), hooks);
    w.start();
    const done = settledOnce(w, 5);
    await w.enqueue(event('call.start', { caller: nasty, TEL: nasty, callerName: name }));
    expect((await done).map((s) => s.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(rx.to('/esc/form')[0]!.parsed).toEqual({ kind: 'form', fields: { caller: nasty, name, x: '1' } });
    expect(rx.to('/esc/json')[0]!.parsed).toEqual({ kind: 'json', value: { caller: nasty, name } });
    const xml = rx.to('/esc/xml')[0]!.parsed;
    if (xml.kind !== 'xml') throw new Error(rx.to('/esc/xml')[0]!.invalid);
    expect(xml.root.children.map((c) => c.text)).toEqual([nasty, name]);
    expect(xml.root.children[1]!.attributes.a).toBe(name);
    const xml2 = rx.to('/esc/xml2')[0]!.parsed;
    if (xml2.kind !== 'xml') throw new Error('not xml');
    expect(xml2.root.children.map((c) => [c.name, c.text])).toEqual([['caller', nasty], ['name', name]]);
    expect(rx.to('/esc/q')[0]!.query.get('c')).toBe(nasty);
  });

  it('inline: the caller waits for the answer; extracted values come back and are stored; retries honoured; logged as inline', async () => {
    const { hooks } = hooksOf(`
  - { name: route, on: inline, request: { url: "RX/inline", body: { caller: "{caller}" }, timeout: 1s }, extract: { target: "$.target" }, retry: { count: 1, interval: 50ms } }
  - { name: gated, on: inline, when: { value: "{caller}", match: "/^\\\\+44/" }, request: { url: "RX/inline" } }
`);
    rx.enqueue('/inline', { status: 502, body: 'bad gateway' });
    rx.setDefault('/inline', { body: '{"target":"queue-vip"}' });
    const store = newStore();
    const w = worker(store, hooks);
    w.start();
    const r = await w.runInline('route', { callId: 'inline-1', vars: { caller: '+819012345678', called: '200' } });
    expect(r).toMatchObject({ status: 'ok', attempts: 2, extracted: { target: 'queue-vip' } });
    expect(r.durationMs).toBeGreaterThanOrEqual(50);
    expect(await w.callVars('inline-1')).toEqual({ target: 'queue-vip' });
    const g = await w.runInline('gated', { callId: 'inline-1', vars: { caller: '+819012345678' } });
    expect(g).toMatchObject({ status: 'skipped', attempts: 0 });
    expect(g.reason).toMatch(/condition not met/);
    const log = (await queryHookLog(store, { callId: 'inline-1' })).entries;
    expect(log.map((e) => [e.hook, e.mode, e.status, e.attempts])).toEqual([['route', 'inline', 'ok', 2], ['gated', 'inline', 'skipped', 0]]);
  });

  it('an inline run cut off by a crash is marked failed at the next start, never resent', async () => {
    const { hooks } = hooksOf(`
  - { name: route, on: inline, request: { url: "RX/inline-crash", timeout: 1s } }
`);
    const store = newStore();
    store.migrate((await import('../../src/hooks/store.js')).hookMigrations);
    store.db
      .prepare(
        `INSERT INTO hook_runs (id, call_id, event, event_key, hook, seq, mode, vars, status, attempts, lease_until, claimed_by, created_at, updated_at)
         VALUES ('r1', 'c1', 'inline', 'c1/inline/r1', 'route', 0, 'inline', '{}', 'sending', 1, ?, 'dead', ?, ?)`,
      )
      .run(Date.now() - 1, Date.now(), Date.now());
    store.db.prepare(`INSERT INTO hook_attempts (run_id, attempt, started_at, outcome) VALUES ('r1', 1, ?, 'sending')`).run(Date.now());
    const w = worker(store, hooks);
    w.start();
    await new Promise((r) => setTimeout(r, 100));
    const e = (await queryHookLog(store, { callId: 'c1' })).entries[0]!;
    expect(e.status).toBe('failed');
    expect(e.reason).toMatch(/interrupted/);
    expect(e.attemptLog[0]!.outcome).toBe('interrupted');
    expect(rx.to('/inline-crash')).toHaveLength(0);
  });
});
