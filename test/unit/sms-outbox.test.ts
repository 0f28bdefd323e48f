import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getSmsMessage, querySmsHistory } from '../../src/sms/history.js';
import { createHttpProvider, httpProviderSchema } from '../../src/sms/http-provider.js';
import { excerpt } from '../../src/http/excerpt.js';
import { Outbox, type OutboxMessage, type OutboxOptions, type SettledMessage } from '../../src/sms/outbox.js';
import type { SmsProvider } from '../../src/sms/provider.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import {
  DEFAULT_CREDENTIALS,
  hang,
  http429,
  quota300,
  slow,
  startAossms,
  type AossmsStandIn,
} from '../standins/aossms.js';

const INTERVAL = 200;

let dir: string;
let file: string;
let s: AossmsStandIn;
const cleanups: Array<() => unknown> = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'call-actions-outbox-'));
  file = `sqlite:${join(dir, 'data', 'outbox.db')}`;
  s = await startAossms();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function store(): Store {
  const st = openStore(file);
  cleanups.push(() => st.close());
  return st;
}

function provider(over: Record<string, unknown> = {}, dispatcher?: Agent): SmsProvider {
  const config = httpProviderSchema.parse({
    kind: 'http',
    url: s.endpoint,
    body: { ...DEFAULT_CREDENTIALS, message: '{message}', phoneNumber: '{to}' },
    timeout: '1s',
    error: { match: '/"responseCode":300/' },
    retry: { count: 2, interval: `${INTERVAL}ms` },
    ...over,
  });
  return createHttpProvider('aossms', config, { dispatcher });
}

function outbox(st: Store, opts: Partial<OutboxOptions> = {}): Outbox {
  const o = new Outbox({ store: st, providers: { aossms: provider() }, leaseMarginMs: 200, ...opts });
  cleanups.push(() => o.stop({ graceMs: 0 }));
  return o;
}

function msg(over: Partial<OutboxMessage> = {}): OutboxMessage {
  return { callId: 'call-1', description: 'Queue # SMS', provider: 'aossms', to: '+819012345678', text: 'Book a call-back', ...over };
}

/** Resolves with the settle event of each id (from any of the outboxes). */
function settled(outboxes: Outbox[], ids: readonly string[], timeoutMs = 5_000): Promise<Map<string, SettledMessage>> {
  const got = new Map<string, SettledMessage>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${got.size} of ${ids.length} messages settled within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const on = (m: SettledMessage) => {
      if (!ids.includes(m.id)) return;
      if (got.has(m.id)) reject(new Error(`message ${m.id} settled twice`));
      got.set(m.id, m);
      if (got.size === ids.length) {
        clearTimeout(timer);
        for (const o of outboxes) o.off('settled', on);
        resolve(got);
      }
    };
    for (const o of outboxes) o.on('settled', on);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Outbox', () => {
  it('sends an accepted message exactly once and records the attempt', async () => {
    const st = store();
    const o = outbox(st);
    o.start();
    const { duplicate, ids } = await o.accept([msg()]);
    expect(duplicate).toBe(false);
    expect((await getSmsMessage(st, ids[0]!))?.status).toMatch(/pending|sending/);

    const done = await settled([o], ids);
    expect(done.get(ids[0]!)).toMatchObject({ status: 'sent', attempts: 1, to: '+819012345678' });
    await sleep(INTERVAL * 2);
    expect(s.requests).toHaveLength(1);
    expect(s.delivered.map((d) => [d.phoneNumber, d.message])).toEqual([['+819012345678', 'Book a call-back']]);

    const row = (await getSmsMessage(st, ids[0]!))!;
    expect(row).toMatchObject({ status: 'sent', attempts: 1, callId: 'call-1', description: 'Queue # SMS' });
    expect(row.attemptLog).toHaveLength(1);
    expect(row.attemptLog[0]).toMatchObject({ attempt: 1, outcome: 'ok', httpStatus: 200 });
    expect(row.attemptLog[0]!.body).toContain('"responseCode":200');
  });

  it('retries quota (code 300) at the provider interval and then sends', async () => {
    s.enqueue(quota300, quota300);
    const st = store();
    const o = outbox(st);
    o.start();
    const { ids } = await o.accept([msg()]);
    const done = await settled([o], ids);
    expect(done.get(ids[0]!)).toMatchObject({ status: 'sent', attempts: 3 });
    expect(s.requests).toHaveLength(3);
    expect(s.delivered).toHaveLength(1);

    const log = (await getSmsMessage(st, ids[0]!))!.attemptLog;
    expect(log.map((a) => a.outcome)).toEqual(['retry', 'retry', 'ok']);
    const gaps = [s.requests[1]!.at - s.requests[0]!.at, s.requests[2]!.at - s.requests[1]!.at];
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(INTERVAL - 5);
      expect(gap).toBeLessThan(INTERVAL + 400);
    }
  });

  it('fails after the first attempt and its retries when quota never clears', async () => {
    s.setDefault(quota300);
    const st = store();
    const o = outbox(st);
    o.start();
    const { ids } = await o.accept([msg()]);
    const done = await settled([o], ids);
    expect(done.get(ids[0]!)).toMatchObject({ status: 'failed', attempts: 3 });
    await sleep(INTERVAL * 2);
    expect(s.requests).toHaveLength(3);
    expect(s.delivered).toHaveLength(0);

    const row = (await getSmsMessage(st, ids[0]!))!;
    expect(row.status).toBe('failed');
    expect(row.reason).toMatch(/no retries left/);
    expect(row.attemptLog.map((a) => [a.attempt, a.outcome, a.httpStatus])).toEqual([
      [1, 'retry', 200],
      [2, 'retry', 200],
      [3, 'retry', 200],
    ]);
    expect(row.lastAnswer?.body).toContain('"responseCode":300');
  });

  it('does not retry an answer that will not change (bad credentials)', async () => {
    const st = store();
    const bad = provider({ body: { ...DEFAULT_CREDENTIALS, token: 'nope', message: '{message}', phoneNumber: '{to}' } });
    const o = outbox(st, { providers: { aossms: bad } });
    o.start();
    const { ids } = await o.accept([msg()]);
    const done = await settled([o], ids);
    expect(done.get(ids[0]!)).toMatchObject({ status: 'failed', attempts: 1, reason: 'http-401' });
    await sleep(INTERVAL * 2);
    expect(s.requests).toHaveLength(1);
  });

  it("waits at least the provider's Retry-After", async () => {
    s.enqueue(http429(1));
    const st = store();
    const o = outbox(st);
    o.start();
    const { ids } = await o.accept([msg()]);
    await settled([o], ids);
    expect(s.requests[1]!.at - s.requests[0]!.at).toBeGreaterThanOrEqual(1000 - 5);
  });

  it('holds a message until notBefore without polling for it', async () => {
    const st = store();
    const o = outbox(st);
    o.start();
    const accepted = Date.now();
    const { ids } = await o.accept([msg({ notBefore: accepted + 400 })]);
    await sleep(200);
    expect(s.requests).toHaveLength(0);
    await settled([o], ids);
    expect(s.requests[0]!.at - accepted).toBeGreaterThanOrEqual(400 - 5);
  });

  it('writes all messages of one accept or none', async () => {
    const st = store();
    const o = outbox(st);
    await expect(o.accept([msg(), msg({ provider: 'nosuch' })])).rejects.toThrow(/unknown SMS provider "nosuch"/);
    expect((await querySmsHistory(st)).total).toBe(0);
  });

  it('accepts only once per (call, key), also after the store is reopened', async () => {
    const once = { callId: 'call-7', key: 'queue-exit[0]' };
    const first = store();
    const a = outbox(first);
    const r1 = await a.accept([msg({ callId: 'call-7' }), msg({ callId: 'call-7', to: '+819087654321' })], { once });
    expect(r1).toMatchObject({ duplicate: false });
    expect(r1.ids).toHaveLength(2);
    expect(await a.accept([msg({ callId: 'call-7' })], { once })).toEqual({ duplicate: true, ids: [], blocked: [] });
    first.close();

    const second = store();
    const b = outbox(second);
    expect(await b.accept([msg({ callId: 'call-7' })], { once })).toEqual({ duplicate: true, ids: [], blocked: [] });
    // Another step in the same call, and the same step in another call, are separate.
    expect((await b.accept([msg({ callId: 'call-7' })], { once: { ...once, key: 'queue-exit[3]' } })).duplicate).toBe(false);
    expect((await b.accept([msg({ callId: 'call-8' })], { once: { ...once, callId: 'call-8' } })).duplicate).toBe(false);
    expect((await querySmsHistory(second, { callId: 'call-7' })).total).toBe(3);
  });

  it('recovers a message left sending by a crash: sent exactly once, the lost attempt marked interrupted', async () => {
    // The first request hangs; then the process "dies": its database handle and its sockets go
    // away without any of our shutdown code running.
    s.enqueue(hang());
    const agentA = new Agent();
    const storeA = openStore(file);
    const a = new Outbox({ store: storeA, providers: { aossms: provider({}, agentA) }, leaseMarginMs: 200 });
    a.start();
    const { ids } = await a.accept([msg()]);
    const id = ids[0]!;
    await s.waitForRequests(1);
    expect((await getSmsMessage(storeA, id))?.status).toBe('sending');
    storeA.close();
    await agentA.destroy();
    await a.stop({ graceMs: 0 });
    expect(s.delivered).toHaveLength(0);

    const storeB = store();
    expect((await getSmsMessage(storeB, id))?.status).toBe('sending');
    const b = outbox(storeB);
    const done = settled([b], ids);
    b.start();
    expect((await done).get(id)).toMatchObject({ status: 'sent', attempts: 2 });
    await sleep(INTERVAL * 2);

    expect(s.requests).toHaveLength(2);
    expect(s.delivered).toHaveLength(1);
    const row = (await getSmsMessage(storeB, id))!;
    expect(row.status).toBe('sent');
    expect(row.attemptLog.map((x) => x.outcome)).toEqual(['interrupted', 'ok']);
  });

  it('puts a message cut off by stop() back to pending without spending a retry', async () => {
    s.enqueue(hang());
    const st = store();
    const noRetry = provider({ retry: { count: 0 } });
    const a = new Outbox({ store: st, providers: { aossms: noRetry }, leaseMarginMs: 200 });
    a.start();
    const { ids } = await a.accept([msg()]);
    await s.waitForRequests(1);
    await a.stop({ graceMs: 50 });
    const row = (await getSmsMessage(st, ids[0]!))!;
    expect(row.status).toBe('pending');
    expect(row.attemptLog.map((x) => x.outcome)).toEqual(['interrupted']);

    const b = outbox(st, { providers: { aossms: noRetry } });
    const done = settled([b], ids);
    b.start();
    expect((await done).get(ids[0]!)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(s.delivered).toHaveLength(1);
  });

  it('gives up on a message whose attempts keep being cut off, instead of crash-looping on it', async () => {
    const st = store();
    const o = outbox(st, { maxInterruptions: 2 });
    const { ids } = await o.accept([msg()]);
    // As a worker that died twice mid-attempt would leave it: sending, lease run out.
    st.db
      .prepare(
        "UPDATE sms_messages SET status = 'sending', attempts = 2, interrupted = 1, lease_until = ?, claimed_by = 'dead' WHERE id = ?",
      )
      .run(Date.now() - 1, ids[0]!);
    st.db
      .prepare("INSERT INTO sms_attempts (message_id, attempt, started_at, outcome) VALUES (?, 1, 0, 'interrupted'), (?, 2, 0, 'sending')")
      .run(ids[0]!, ids[0]!);
    const done = settled([o], ids);
    o.start();
    expect((await done).get(ids[0]!)).toMatchObject({ status: 'failed', reason: 'interrupted 2 times' });
    expect(s.requests).toHaveLength(0);
    expect((await getSmsMessage(st, ids[0]!))!.attemptLog.map((a) => a.outcome)).toEqual(['interrupted', 'interrupted']);
  });

  it('never sends a message twice when two outboxes share one database', async () => {
    s.setDefault(slow(20));
    const storeA = store();
    const storeB = store();
    const a = outbox(storeA, { concurrency: 3, workerId: 'A' });
    const b = outbox(storeB, { concurrency: 3, workerId: 'B' });
    const { ids } = await a.accept(Array.from({ length: 24 }, (_, i) => msg({ text: `message ${i}` })));
    const done = settled([a, b], ids, 10_000);
    a.start();
    b.start();
    const all = await done;
    expect([...all.values()].every((m) => m.status === 'sent' && m.attempts === 1)).toBe(true);
    await sleep(INTERVAL);

    expect(s.requests).toHaveLength(24);
    expect(new Set(s.delivered.map((d) => d.message)).size).toBe(24);
    const workers = storeA.db.prepare('SELECT DISTINCT worker FROM sms_attempts ORDER BY worker').pluck().all();
    expect(workers).toEqual(['A', 'B']);
  });

  it('bounds the sends in flight', async () => {
    s.setDefault(slow(100));
    const st = store();
    const o = outbox(st, { concurrency: 2 });
    let peak = 0;
    const { ids } = await o.accept(Array.from({ length: 6 }, (_, i) => msg({ text: `m${i}` })));
    const done = settled([o], ids);
    const probe = setInterval(() => (peak = Math.max(peak, o.busy)), 5);
    o.start();
    await done;
    clearInterval(probe);
    expect(peak).toBe(2);
  });

  it('records a skipped SMS in the history', async () => {
    const st = store();
    const o = outbox(st);
    await o.recordSkipped({ callId: 'call-9', description: 'Queue # SMS', provider: 'aossms', to: 'anonymous', reason: 'withheld caller ID' });
    const { entries } = await querySmsHistory(st, { callId: 'call-9' });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ status: 'skipped', recipient: 'anonymous', reason: 'withheld caller ID', attempts: 0 });
  });
});

describe('excerpt', () => {
  it('keeps at most 2 KiB and never splits a character', () => {
    expect(excerpt('short')).toBe('short');
    const cut = excerpt('あ'.repeat(1000)); // 3 bytes each
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(2048);
    expect(cut).toBe('あ'.repeat(682));
  });
});

describe('delivery semantics', () => {
  it('at-least-once (the default): every attempt carries the message id as Idempotency-Key, the same on a retry', async () => {
    s.enqueue(hang());
    const st = store();
    const o = outbox(st);
    o.start();
    const { ids } = await o.accept([msg()]);
    expect((await settled([o], ids)).get(ids[0]!)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(s.requests.map((r) => r.headers['idempotency-key'])).toEqual([ids[0], ids[0]]);
  });

  it('idempotencyKey names the header, or false sends none', async () => {
    const st = store();
    const named = outbox(st, { providers: { aossms: provider({ idempotencyKey: 'X-Request-Id' }) } });
    named.start();
    const first = (await named.accept([msg()])).ids;
    await settled([named], first);
    await named.stop();
    const none = outbox(st, { providers: { aossms: provider({ idempotencyKey: false }) } });
    none.start();
    await settled([none], (await none.accept([msg({ callId: 'call-2' })])).ids);
    expect(s.requests[0]!.headers['x-request-id']).toBe(first[0]);
    expect(s.requests[0]!.headers['idempotency-key']).toBeUndefined();
    expect(Object.keys(s.requests[1]!.headers).filter((h) => /idempotency|request-id/.test(h))).toEqual([]);
  });

  it('at-most-once: a timed-out attempt settles the message as unknown and it is never repeated', async () => {
    s.enqueue(hang());
    const st = store();
    const o = outbox(st, { providers: { aossms: provider({ delivery: 'at-most-once' }) } });
    o.start();
    const { ids } = await o.accept([msg()]);
    expect((await settled([o], ids)).get(ids[0]!)).toMatchObject({ status: 'unknown', attempts: 1 });
    await sleep(INTERVAL * 3);
    expect(s.requests).toHaveLength(1);
    const row = (await getSmsMessage(st, ids[0]!))!;
    expect(row.status).toBe('unknown');
    expect(row.reason).toMatch(/timeout; at-most-once: not repeated/);
    expect((await querySmsHistory(st, { status: 'unknown' })).total).toBe(1);
  });

  it('at-most-once still retries what the provider provably did not take (429)', async () => {
    s.enqueue(http429());
    const st = store();
    const o = outbox(st, { providers: { aossms: provider({ delivery: 'at-most-once' }) } });
    o.start();
    const { ids } = await o.accept([msg()]);
    expect((await settled([o], ids)).get(ids[0]!)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(s.delivered).toHaveLength(1);
  });

  it('at-most-once: a message a dead worker left sending is settled unknown by the next one, with no request', async () => {
    const st = store();
    const o = outbox(st, { providers: { aossms: provider({ delivery: 'at-most-once' }) } });
    const { ids } = await o.accept([msg()]);
    st.db
      .prepare("UPDATE sms_messages SET status = 'sending', attempts = 1, lease_until = ?, claimed_by = 'dead' WHERE id = ?")
      .run(Date.now() - 1, ids[0]!);
    st.db.prepare("INSERT INTO sms_attempts (message_id, attempt, started_at, outcome) VALUES (?, 1, 0, 'sending')").run(ids[0]!);
    const done = settled([o], ids);
    o.start();
    expect((await done).get(ids[0]!)).toMatchObject({ status: 'unknown', reason: 'lease expired; at-most-once: not repeated' });
    await sleep(INTERVAL * 2);
    expect(s.requests).toHaveLength(0);
    expect((await getSmsMessage(st, ids[0]!))!.attemptLog.map((a) => a.outcome)).toEqual(['interrupted']);
  });
});
