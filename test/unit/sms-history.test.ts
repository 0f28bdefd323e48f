import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSmsMessage, querySmsHistory } from '../../src/sms/history.js';
import { createHttpProvider, httpProviderSchema } from '../../src/sms/http-provider.js';
import { Outbox, type SettledMessage } from '../../src/sms/outbox.js';
import { openStore, type Store } from '../../src/store/sqlite.js';
import { DEFAULT_CREDENTIALS, quota300, startAossms, type AossmsStandIn } from '../standins/aossms.js';

let s: AossmsStandIn;
let st: Store;
let o: Outbox;
const T0 = Date.UTC(2025, 5, 1, 9, 0, 0);
const ids: Record<string, string> = {};

function provider(name: string, token: string) {
  return createHttpProvider(
    name,
    httpProviderSchema.parse({
      kind: 'http',
      url: s.endpoint,
      body: { ...DEFAULT_CREDENTIALS, token, message: '{message}', phoneNumber: '{to}' },
      timeout: '1s',
      error: { match: '/"responseCode":300/' },
      retry: { count: 1, interval: '50ms' },
    }),
  );
}

beforeAll(async () => {
  s = await startAossms();
  st = openStore('sqlite::memory:');
  o = new Outbox({ store: st, providers: { aossms: provider('aossms', DEFAULT_CREDENTIALS.token), broken: provider('broken', 'bad') } });

  const settledIds = new Set<string>();
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      const on = (m: SettledMessage) => {
        settledIds.add(m.id);
        if (settledIds.size < n) return;
        o.off('settled', on);
        resolve();
      };
      o.on('settled', on);
    });
  o.start();
  // The first message alone, so the one quota answer is certainly its first attempt.
  s.enqueue(quota300);
  let waiting = until(1);
  ids.a = (await o.accept([{ callId: 'c1', description: 'Queue # SMS', provider: 'aossms', to: '+819011110000', text: 'A' }])).ids[0]!;
  await waiting;
  waiting = until(3);
  ids.b = (await o.accept([{ callId: 'c1', description: 'VIP line reached', provider: 'aossms', to: '+48221131415', text: 'B' }])).ids[0]!;
  ids.c = (await o.accept([{ callId: 'c2', description: 'Queue # SMS', provider: 'broken', to: '+819011110000', text: 'C' }])).ids[0]!;
  ids.d = await o.recordSkipped({ callId: 'c3', description: 'Queue # SMS', provider: 'aossms', reason: 'withheld caller ID' });
  await waiting;
  await o.stop();

  // Spread the acceptance times so range filters and ordering are deterministic.
  const at = st.db.prepare('UPDATE sms_messages SET created_at = ? WHERE id = ?');
  at.run(T0, ids.a);
  at.run(T0 + 60_000, ids.b);
  at.run(T0 + 120_000, ids.c);
  at.run(T0 + 180_000, ids.d);
});

afterAll(async () => {
  st.close();
  await s.close();
});

const idsOf = async (f: Parameters<typeof querySmsHistory>[1]) => (await querySmsHistory(st, f)).entries.map((e) => e.id);

describe('querySmsHistory', () => {
  it('lists everything newest first with the total', async () => {
    const page = await querySmsHistory(st);
    expect(page.total).toBe(4);
    expect(page.entries.map((e) => e.id)).toEqual([ids.d, ids.c, ids.b, ids.a]);
  });

  it.each([
    ['callId', { callId: 'c1' }, ['b', 'a']],
    ['description', { description: 'Queue # SMS' }, ['d', 'c', 'a']],
    ['recipient', { recipient: '+819011110000' }, ['c', 'a']],
    ['one status', { status: 'failed' as const }, ['c']],
    ['several statuses', { status: ['sent', 'skipped'] as const }, ['d', 'b', 'a']],
    ['no status at all', { status: [] as const }, []],
    ['since', { since: T0 + 60_000 }, ['d', 'c', 'b']],
    ['until (exclusive)', { until: T0 + 120_000 }, ['b', 'a']],
    ['a window', { since: T0 + 30_000, until: T0 + 150_000 }, ['c', 'b']],
    ['combined', { description: 'Queue # SMS', status: 'sent' as const }, ['a']],
  ])('filters by %s', async (_name, filter, expected) => {
    expect(await idsOf(filter)).toEqual(expected.map((k) => ids[k]));
  });

  it('pages with limit and offset', async () => {
    const page = await querySmsHistory(st, { limit: 2, offset: 1 });
    expect(page.total).toBe(4);
    expect(page.entries.map((e) => e.id)).toEqual([ids.c, ids.b]);
    expect((await querySmsHistory(st, { limit: 10_000 })).entries).toHaveLength(4);
  });

  it("carries each message's attempts and the provider's last answer", async () => {
    const a = (await getSmsMessage(st, ids.a!))!;
    expect(a).toMatchObject({
      callId: 'c1',
      description: 'Queue # SMS',
      provider: 'aossms',
      recipient: '+819011110000',
      status: 'sent',
      attempts: 2,
      time: T0,
    });
    expect(a.attemptLog.map((x) => [x.attempt, x.outcome])).toEqual([
      [1, 'retry'],
      [2, 'ok'],
    ]);
    expect(a.attemptLog[0]!.body).toContain('"responseCode":300');
    expect(a.lastAnswer).toMatchObject({ attempt: 2, outcome: 'ok', httpStatus: 200 });
    expect(a.attemptLog[1]!.startedAt).toBeGreaterThanOrEqual(a.attemptLog[0]!.finishedAt!);

    const c = (await querySmsHistory(st, { status: 'failed' })).entries[0]!;
    expect(c).toMatchObject({ provider: 'broken', attempts: 1, reason: 'http-401' });
    expect(c.lastAnswer).toMatchObject({ outcome: 'final', httpStatus: 401 });
    expect(c.lastAnswer?.body).toMatch(/Authentication failed/);

    const d = (await getSmsMessage(st, ids.d!))!;
    expect(d).toMatchObject({ status: 'skipped', recipient: null, attempts: 0, lastAnswer: null, attemptLog: [] });
  });

  it('returns undefined for an unknown id', async () => {
    expect(await getSmsMessage(st, 'nope')).toBeUndefined();
  });
});
