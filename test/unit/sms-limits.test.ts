import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { querySmsHistory } from '../../src/sms/history.js';
import { smsLimitsSchema, type SmsLimits } from '../../src/sms/limits.js';
import { Outbox, smsMigrations, type OutboxMessage } from '../../src/sms/outbox.js';
import type { SmsProvider } from '../../src/sms/provider.js';
import { openStore, type Store } from '../../src/store/sqlite.js';

/** Never called: these tests only accept (the outbox is not started). */
const provider: SmsProvider = {
  name: 'p',
  retry: { count: 0, intervalMs: 0 },
  send: () => Promise.reject(new Error('not in this test')),
};

let dir: string;
let file: string;
const stores: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'call-actions-limits-'));
  file = `sqlite:${join(dir, 'db.sqlite')}`;
});
afterEach(() => {
  vi.useRealTimers();
  for (const s of stores.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function outbox(limits: Record<string, unknown>): Outbox {
  const store = openStore(file);
  stores.push(store);
  return new Outbox({ store, providers: { p: provider }, limits: smsLimitsSchema.parse(limits) as SmsLimits });
}

const msg = (to: string, over: Partial<OutboxMessage> = {}): OutboxMessage => ({ callId: 'c', description: 'Agents', provider: 'p', to, text: 't', ...over });
const blockedOf = async (o: Outbox, m: OutboxMessage) => (await o.accept([m])).blocked[0]?.reason;

describe('SMS limits', () => {
  it('perRecipient: the 4th SMS to one number within the window is blocked and recorded; a restart does not reset it', async () => {
    vi.useFakeTimers({ now: Date.UTC(2025, 0, 1, 12), toFake: ['Date'] });
    const limits = { perRecipient: { max: 3, window: '1h' } };
    let o = outbox(limits);
    for (let i = 0; i < 3; i++) expect(await blockedOf(o, msg('+48601234567', { callId: `c${i}` }))).toBeUndefined();
    expect(await blockedOf(o, msg('+48601000000'))).toBeUndefined(); // another number is not affected

    stores.pop()!.close();
    o = outbox(limits); // "restart": a new outbox on the same file
    const reason = await blockedOf(o, msg('+48601234567', { callId: 'c3' }));
    expect(reason).toBe('blocked by sms.limits.perRecipient: 3 SMS to this number within 1h (max 3)');

    const h = await querySmsHistory(stores[0]!, { recipient: '+48601234567' });
    expect(h.entries.map((e) => e.status)).toEqual(['blocked', 'pending', 'pending', 'pending']);
    expect(h.entries[0]).toMatchObject({ callId: 'c3', reason, text: 't' });

    // blocked rows do not count; after the window the number may be texted again
    vi.setSystemTime(Date.now() + 3_600_001);
    expect(await blockedOf(o, msg('+48601234567'))).toBeUndefined();
  });

  it('perRecipient counts the messages of one accept as they are written', async () => {
    const o = outbox({ perRecipient: { max: 1, window: '1m' } });
    const r = await o.accept([msg('+48601234567'), msg('+48601234567')]);
    expect(r.ids).toHaveLength(2);
    expect(r.blocked).toHaveLength(1);
  });

  it('perPrefix: a rule caps every number under its prefix, naming the rule', async () => {
    const o = outbox({ perPrefix: [{ prefix: '+4860', max: 2, window: '10m' }, { prefix: '+882', max: 0, window: '1h' }] });
    expect(await blockedOf(o, msg('+48601234567'))).toBeUndefined();
    expect(await blockedOf(o, msg('+48609999999'))).toBeUndefined();
    expect(await blockedOf(o, msg('+48605555555'))).toBe('blocked by sms.limits.perPrefix[0] (+4860): 2 SMS to +4860… within 10m (max 2)');
    expect(await blockedOf(o, msg('+48501234567'))).toBeUndefined(); // outside the prefix
    expect(await blockedOf(o, msg('+88234123456'))).toMatch(/^blocked by sms\.limits\.perPrefix\[1\] \(\+882\)/);
  });

  it('allowCountries: numbers of other countries are blocked', async () => {
    const o = outbox({ allowCountries: ['PL', 'DE'] });
    expect(await blockedOf(o, msg('+48601234567'))).toBeUndefined();
    expect(await blockedOf(o, msg('+4915123456789'))).toBeUndefined();
    expect(await blockedOf(o, msg('+819012345678'))).toBe('blocked by sms.limits.allowCountries: JP is not in [PL, DE]');
  });

  it('dailyCapPerStep: counted per step description over 24 hours', async () => {
    vi.useFakeTimers({ now: Date.UTC(2025, 0, 1, 23, 59), toFake: ['Date'] });
    const o = outbox({ dailyCapPerStep: 2 });
    expect((await o.accept([msg('+48601000001'), msg('+48601000002')])).blocked).toEqual([]);
    expect(await blockedOf(o, msg('+48601000003'))).toBe('blocked by sms.limits.dailyCapPerStep: 2 SMS from step "Agents" in the last 24 hours (max 2)');
    expect(await blockedOf(o, msg('+48601000003', { description: 'Other step' }))).toBeUndefined();
    vi.setSystemTime(Date.now() + 60_000); // past midnight: still within 24 hours
    expect(await blockedOf(o, msg('+48601000004'))).toBeDefined();
    vi.setSystemTime(Date.now() + 24 * 3_600_000);
    expect(await blockedOf(o, msg('+48601000004'))).toBeUndefined();
  });

  it('config errors name the field', async () => {
    const r = smsLimitsSchema.safeParse({ perRecipient: { max: 3, window: '0s' }, perPrefix: [{ prefix: '4860', max: 1, window: '1h' }], allowCountries: ['XX'] });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['allowCountries.0', 'perPrefix.0.prefix', 'perRecipient.window']);
  });
});

describe('migration sms/002', () => {
  it('keeps existing messages and attempts, and then allows status blocked and a note', async () => {
    const old = openStore(file, { migrations: smsMigrations.slice(0, 1) });
    old.db.exec(`INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, status, attempts, not_before, created_at, updated_at)
                 VALUES ('m1', 'c1', 'd', 'p', '+48601234567', 'hello', 'sent', 1, 1, 1, 1)`);
    old.db.exec(`INSERT INTO sms_attempts (message_id, attempt, started_at, outcome, http_status) VALUES ('m1', 1, 1, 'ok', 200)`);
    old.close();

    const st = openStore(file, { migrations: smsMigrations });
    stores.push(st);
    const h = await querySmsHistory(st, {});
    expect(h.total).toBe(1);
    expect(h.entries[0]).toMatchObject({ id: 'm1', status: 'sent', text: 'hello', note: null });
    expect(h.entries[0]!.attemptLog).toMatchObject([{ attempt: 1, outcome: 'ok', httpStatus: 200 }]);
    expect(st.db.pragma('foreign_key_check')).toEqual([]);
    // the attempts still belong to their message: deleting it removes them
    st.db.exec(`DELETE FROM sms_messages WHERE id = 'm1'`);
    expect(st.db.prepare('SELECT COUNT(*) AS n FROM sms_attempts').get()).toEqual({ n: 0 });
    const o = new Outbox({ store: st, providers: { p: provider }, limits: smsLimitsSchema.parse({ allowCountries: ['PL'] }) });
    expect((await o.accept([msg('+819012345678', { note: 'n' })])).blocked).toHaveLength(1);
    expect((await querySmsHistory(st, { status: 'blocked' })).entries[0]).toMatchObject({ note: 'n', status: 'blocked' });
  });
});
