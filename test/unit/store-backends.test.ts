import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { pairMigrations } from '../../src/app/pair.js';
import { parseConfigText } from '../../src/config/load.js';
import { salesforceMigrations } from '../../src/crm/salesforce/store.js';
import { queryHookLog } from '../../src/hooks/history.js';
import { hooksRetention } from '../../src/hooks/retention.js';
import { hookMigrations } from '../../src/hooks/store.js';
import { HookWorker } from '../../src/hooks/worker.js';
import { createRouteLog, routeMigrations } from '../../src/routing/history.js';
import { getSmsMessage, querySmsHistory } from '../../src/sms/history.js';
import { smsLimitsSchema } from '../../src/sms/limits.js';
import { Outbox, smsMigrations, type OutboxMessage, type SettledMessage } from '../../src/sms/outbox.js';
import type { SendResult, SmsProvider } from '../../src/sms/provider.js';
import { recordReceipt } from '../../src/sms/receipts.js';
import { smsRetention } from '../../src/sms/retention.js';
import { auditMigrations, openAuditLog } from '../../src/store/audit.js';
import type { StorePort } from '../../src/store/port.js';
import { auditRetention, purgeOnce, retentionSchema } from '../../src/store/retention.js';
import { BACKENDS, testCluster, usePostgres, type Backend } from '../helpers/backends.js';

/**
 * The store-level behaviour of every feature, on each backend: SQLite always, PostgreSQL on the
 * tests' own cluster (test/helpers/postgres.ts). What runs here is the features' own SQL, both
 * texts where they differ, against a real database of each kind.
 */

usePostgres();

const ALL = [...smsMigrations, ...hookMigrations, ...salesforceMigrations, ...routeMigrations, ...pairMigrations, ...auditMigrations];

/** A provider that answers at once and counts what it was given, by text. */
function counting(): SmsProvider & { sent: string[] } {
  const sent: string[] = [];
  return {
    name: 'p',
    retry: { count: 0, intervalMs: 0 },
    sent,
    async send(m): Promise<SendResult> {
      sent.push(m.text);
      await new Promise((r) => setTimeout(r, 5));
      return { outcome: 'ok', reason: 'ok', latencyMs: 5, providerMessageId: `pm-${m.messageId}` };
    },
  } as SmsProvider & { sent: string[] };
}

const msg = (over: Partial<OutboxMessage> = {}): OutboxMessage => ({ callId: 'c1', description: 'Queue # SMS', provider: 'p', to: '+48601234567', text: 't', ...over });

describe.each(BACKENDS)('features on $name', (backend: Backend) => {
  let dir: string;
  const cleanups: Array<() => unknown> = [];
  let shared: () => Promise<StorePort>;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'call-actions-backends-'));
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  });
  const open = async (): Promise<StorePort> => {
    const fresh = await backend.fresh(join(dir, 'store.db'), ALL);
    cleanups.push(() => fresh.store.close());
    shared = async () => {
      const s = await fresh.shared();
      cleanups.push(() => s.close());
      return s;
    };
    return fresh.store;
  };

  it('applies every shipped migration on an empty database, and again as a no-op', async () => {
    const store = await open();
    await store.migrate(ALL);
    const ids = (await store.query<{ id: string }>('SELECT id FROM schema_migrations ORDER BY id')).map((r) => r.id);
    expect(ids).toEqual(ALL.map((m) => m.id).sort());
    for (const table of ['sms_messages', 'sms_once', 'sms_attempts', 'sms_receipts', 'hook_runs', 'hook_attempts', 'call_vars', 'sf_activities', 'sf_attempts', 'route_log', 'instances', 'audit_log']) {
      expect(await store.one(`SELECT COUNT(*) AS n FROM ${table}`), table).toEqual({ n: 0 });
    }
  });

  it('outbox: accepts once per key, delivers every message exactly once with two workers on two connections', async () => {
    const storeA = await open();
    const storeB = await shared();
    const p = counting();
    const a = new Outbox({ store: storeA, providers: { p }, workerId: 'A', concurrency: 3 });
    const b = new Outbox({ store: storeB, providers: { p }, workerId: 'B', concurrency: 3 });
    cleanups.push(() => a.stop({ graceMs: 0 }), () => b.stop({ graceMs: 0 }));
    const once = { callId: 'c1', key: 'queue-exit[0]' };
    const first = await a.accept(Array.from({ length: 30 }, (_, i) => msg({ text: `m${i}` })), { once });
    expect(first.ids).toHaveLength(30);
    expect(await b.accept([msg()], { once })).toEqual({ duplicate: true, ids: [], blocked: [] });
    expect(await a.hasOnce('c1', 'queue-exit[0]')).toBe(true);

    const settled = new Map<string, SettledMessage>();
    const done = new Promise<void>((resolve) => {
      const on = (m: SettledMessage) => {
        settled.set(m.id, m);
        if (settled.size === 30) resolve();
      };
      a.on('settled', on);
      b.on('settled', on);
    });
    a.start();
    b.start();
    await done;
    expect([...settled.values()].every((m) => m.status === 'sent' && m.attempts === 1)).toBe(true);
    expect(p.sent.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `m${i}`).sort());
    const entry = await getSmsMessage(storeA, first.ids[0]!);
    expect(entry).toMatchObject({ status: 'sent', attempts: 1, providerMessageId: `pm-${first.ids[0]}` });
    expect(entry!.attemptLog).toHaveLength(1);
    const page = await querySmsHistory(storeB, { callId: 'c1', limit: 5 });
    expect(page.total).toBe(30);
    expect(page.entries).toHaveLength(5);

    // a receipt moves the delivery status, once
    const receipt = { messageId: `pm-${first.ids[0]}`, status: 'delivered' as const, providerStatus: 'DELIVRD' };
    expect(await recordReceipt(storeB, 'p', receipt)).toMatchObject({ kind: 'recorded', changed: true, status: 'delivered' });
    expect(await recordReceipt(storeA, 'p', receipt)).toMatchObject({ kind: 'recorded', changed: false });
    expect((await getSmsMessage(storeA, first.ids[0]!))!.receipts).toHaveLength(2);
  }, 30_000);

  it('outbox: a whole batch of results is written, and an answer carrying NUL or a lone surrogate is kept as U+FFFD, not refused', async () => {
    const store = await open();
    // PostgreSQL's text holds no NUL and its json no lone surrogate: one such answer used to fail
    // its batch's write, and the lease then sent the message again, forever
    const answers = ['fine', 'nul\u0000here', 'half \ud83d', 'plain'];
    let i = 0;
    const p: SmsProvider = {
      name: 'p',
      retry: { count: 0, intervalMs: 0 },
      async send(): Promise<SendResult> {
        const body = answers[i++ % answers.length]!;
        return { outcome: 'ok', reason: 'ok', status: 200, body, latencyMs: 1, error: body.includes('\ud83d') ? 'odd \udc00' : undefined, providerMessageId: `pm-${i}` };
      },
    };
    const o = new Outbox({ store, providers: { p }, workerId: 'A', concurrency: 4 });
    cleanups.push(() => o.stop({ graceMs: 0 }));
    const settled: SettledMessage[] = [];
    const done = new Promise<void>((resolve) => o.on('settled', (m) => settled.push(m) === 8 && resolve()));
    const { ids } = await o.accept(Array.from({ length: 8 }, (_, n) => msg({ text: `m${n}` })));
    o.start();
    await done;
    expect(settled.map((m) => m.status)).toEqual(Array(8).fill('sent'));
    const bodies = new Set<string | null>();
    for (const id of ids) {
      const entry = (await getSmsMessage(store, id))!;
      expect(entry).toMatchObject({ status: 'sent', attempts: 1 });
      expect(entry.attemptLog).toHaveLength(1);
      expect(entry.attemptLog[0]).toMatchObject({ outcome: 'ok', httpStatus: 200 });
      bodies.add(entry.attemptLog[0]!.body);
      if (entry.attemptLog[0]!.body === 'half \ufffd') expect(entry.attemptLog[0]!.error).toBe('odd \ufffd');
    }
    expect([...bodies].sort()).toEqual(['fine', 'half \ufffd', 'nul\ufffdhere', 'plain']);
  });

  it('outbox: a retry wait with a fractional backoff is stored (whole milliseconds), and the retry runs', async () => {
    const store = await open();
    let calls = 0;
    const p: SmsProvider = {
      name: 'p',
      // 333 ms, then 333 × 1.5 = 499.5 ms: PostgreSQL's BIGINT next_at refused the half millisecond
      retry: { count: 2, intervalMs: 333, backoff: 1.5 },
      async send(): Promise<SendResult> {
        return ++calls < 3 ? { outcome: 'retry', reason: 'http-503', status: 503, latencyMs: 1 } : { outcome: 'ok', reason: 'ok', status: 200, latencyMs: 1 };
      },
    };
    const o = new Outbox({ store, providers: { p }, workerId: 'A' });
    cleanups.push(() => o.stop({ graceMs: 0 }));
    const settled = new Promise<SettledMessage>((resolve) => o.on('settled', resolve));
    const { ids } = await o.accept([msg()]);
    o.start();
    expect(await settled).toMatchObject({ status: 'sent', attempts: 3 });
    expect(calls).toBe(3);
    expect((await getSmsMessage(store, ids[0]!))!.attemptLog.map((a) => a.outcome)).toEqual(['retry', 'retry', 'ok']);
  });

  it('outbox: limits are counted inside the accept, so accepts racing on two connections cannot both slip under one', async () => {
    const storeA = await open();
    const storeB = await shared();
    const limits = smsLimitsSchema.parse({ perRecipient: { max: 3, window: '1h' } });
    const p = counting();
    const a = new Outbox({ store: storeA, providers: { p }, limits });
    const b = new Outbox({ store: storeB, providers: { p }, limits });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).accept([msg({ callId: `c${i}` })])));
    const accepted = results.filter((r) => r.blocked.length === 0).length;
    expect(accepted).toBe(3);
    expect(results.flatMap((r) => r.blocked.map((x) => x.reason))).toHaveLength(7);
    expect(await storeA.one("SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'blocked'")).toEqual({ n: 7 });
  });

  it('hooks: an event queues its runs once, in order, and the log reads them', async () => {
    const store = await open();
    const text = `asterisk:\n  ari: { user: u, password: p }\nhooks:\n  - { name: a, on: call.start, request: { url: "http://127.0.0.1:9/a" } }\n  - { name: b, on: call.start, request: { url: "http://127.0.0.1:9/b" } }\n`;
    const { hooks } = parseConfigText(text, 'test.yaml', rootSchema, {}).value;
    const w = new HookWorker({ store, hooks });
    const ev = {
      kind: 'call.start',
      key: 'call-1/call.start',
      callId: 'call-1',
      at: Date.now(),
      vars: { callId: 'call-1', caller: '+48601234567', called: '+48221234567', did: '+48221234567', channelId: 'c', event: 'call.start', time: new Date().toISOString() },
    } as Parameters<HookWorker['enqueue']>[0];
    const ids = await w.enqueue(ev);
    expect(ids).toHaveLength(2);
    expect(await w.enqueue(ev)).toEqual([]);
    const log = await queryHookLog(store, { callId: 'call-1' });
    expect(log.total).toBe(2);
    expect(log.entries.map((e) => [e.hook, e.order, e.status])).toEqual([
      ['a', 0, 'pending'],
      ['b', 1, 'pending'],
    ]);
    expect(await w.callVars('call-1')).toEqual({});
  });

  it('retention purges settled rows past their age, never a queued one; the audit log and routing log too', async () => {
    const store = await open();
    const p = counting();
    const o = new Outbox({ store, providers: { p } });
    const old = (await o.accept([msg({ callId: 'old' })])).ids[0]!;
    const queued = (await o.accept([msg({ callId: 'queued' })])).ids[0]!;
    await store.run("UPDATE sms_messages SET status = 'sent', created_at = 1 WHERE id = ?", [old]);
    await store.run('UPDATE sms_messages SET created_at = 1 WHERE id = ?', [queued]);
    const audit = openAuditLog(store);
    await audit.record({ actor: 'x', role: 'admin', action: 'reveal' });
    await store.run('UPDATE audit_log SET at = 1');
    const routes = createRouteLog(store);
    await routes.record({
      time: 1,
      callId: 'r',
      channelId: 'ch',
      stage: 'welcome',
      step: 'stages.welcome[0].route',
      integration: null,
      caller: '+905321234567',
      method: 'POST',
      url: 'https://crm.example.com/route',
      encoding: 'json',
      requestBody: '{}',
      httpStatus: 200,
      responseBody: '{"status":"success"}',
      latencyMs: 12,
      outcome: 'routed',
      reason: 'queue vip',
      decision: 'queue:vip',
      filler: true,
      digits: null,
    });
    const ages = retentionSchema.parse({ sms: '1d', audit: '1d', hooks: '1d' });
    expect(await purgeOnce(store, [smsRetention, hooksRetention, auditRetention], ages)).toEqual({ sms: 1, hooks: 0, audit: 1 });
    expect((await querySmsHistory(store, {})).entries.map((e) => e.callId)).toEqual(['queued']);
    expect((await routes.query({})).entries).toMatchObject([{ callId: 'r', filler: true, latencyMs: 12 }]);
  });
});

describe.skipIf(!BACKENDS.some((b) => b.name === 'postgres'))('PostgreSQL stopped under an outbox', () => {
  it('loses nothing accepted: the worker waits while the store is down and delivers once it is back', async () => {
    const backend = BACKENDS.find((b) => b.name === 'postgres')!;
    const { store } = await backend.fresh('', ALL);
    const p = counting();
    const o = new Outbox({ store, providers: { p }, concurrency: 2 });
    try {
      const { ids } = await o.accept(Array.from({ length: 10 }, (_, i) => msg({ callId: `c${i}`, text: `m${i}` })));
      const cluster = testCluster();
      cluster.stop();
      // an accept now fails loudly (the step falls back); it was never accepted
      await expect(o.accept([msg({ text: 'refused' })])).rejects.toThrow();
      expect(store.ready()).toBe(false);
      o.start();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(p.sent).toEqual([]);
      cluster.start();
      const until = Date.now() + 20_000;
      while (p.sent.length < ids.length && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(p.sent.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
      expect(store.ready()).toBe(true);
    } finally {
      await o.stop({ graceMs: 0 });
      await store.close();
    }
  }, 60_000);
});

