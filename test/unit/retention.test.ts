import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { retentionSchema, purgeOnce, auditRetention } from '../../src/store/retention.js';
import { openAuditLog } from '../../src/store/audit.js';
import { createScrub } from '../../src/store/scrub.js';
import { openStore } from '../../src/store/sqlite.js';
import { Outbox } from '../../src/sms/outbox.js';
import { smsRetention } from '../../src/sms/retention.js';
import { CacheLimit } from '../../src/tts/cache-limit.js';
import type { SmsProvider } from '../../src/sms/provider.js';

const DAY = 86_400_000;

describe('retention', () => {
  it('is 90 days for every log unless set', () => {
    const r = retentionSchema.parse(undefined);
    expect(r).toEqual({ sms: 90 * DAY, hooks: 90 * DAY, routing: 90 * DAY, salesforce: 90 * DAY, audit: 90 * DAY });
    expect(retentionSchema.parse({ sms: '30d', audit: '1h' })).toMatchObject({ sms: 30 * DAY, audit: 3_600_000 });
  });

  it('purges settled rows older than their log age, and never a message still queued', async () => {
    const store = openStore('sqlite::memory:');
    const never: SmsProvider = { name: 'p', send: () => new Promise(() => {}) } as unknown as SmsProvider;
    const outbox = new Outbox({ store, providers: { p: never } });
    const ids = (await outbox.accept([
      { callId: 'old', description: 'd', provider: 'p', to: '+48601234567', text: 'a' },
      { callId: 'new', description: 'd', provider: 'p', to: '+48601234567', text: 'b' },
      { callId: 'queued', description: 'd', provider: 'p', to: '+48601234567', text: 'c' },
    ])).ids;
    const now = Date.now();
    const set = store.db.prepare("UPDATE sms_messages SET status = ?, created_at = ? WHERE id = ?");
    set.run('sent', now - 40 * DAY, ids[0]);
    set.run('failed', now - 10 * DAY, ids[1]);
    set.run('pending', now - 400 * DAY, ids[2]);
    const audit = openAuditLog(store);
    await audit.record({ actor: 'a', role: 'admin', action: 'reveal' });
    store.db.prepare('UPDATE audit_log SET at = ?').run(now - 2 * DAY);
    await audit.record({ actor: 'b', role: 'admin', action: 'reveal' });

    const ages = retentionSchema.parse({ sms: '30d', audit: '1d' });
    expect(await purgeOnce(store, [smsRetention, auditRetention], ages, now)).toEqual({ sms: 1, audit: 1 });
    const left = (store.db.prepare('SELECT call_id FROM sms_messages ORDER BY call_id').all() as Array<{ call_id: string }>).map((r) => r.call_id);
    expect(left).toEqual(['new', 'queued']);
    expect((await audit.list()).map((e) => e.actor)).toEqual(['b']);
    store.close();
  });
});

describe('scrub', () => {
  it('removes known values in every escape, and credential-looking fields whatever their value', () => {
    const scrub = createScrub(['s3cr3t&value']);
    expect(scrub('a=s3cr3t%26value&b=s3cr3t&amp;value "s3cr3t&value"')).toBe('a=[redacted]&b=[redacted] "[redacted]"');
    expect(scrub('{"access_token": "abc", "token":"x\\"y", "name":"ok"}')).toBe('{"access_token": "[redacted]", "token":"[redacted]", "name":"ok"}');
    expect(scrub('?user=1&password=hunter2&x=2')).toBe('?user=1&password=[redacted]&x=2');
    expect(scrub('<auth><apiKey>k1</apiKey></auth>')).toBe('<auth><apiKey>[redacted]</apiKey></auth>');
    expect(scrub('Authorization: Bearer abcdefgh12345')).toBe('Authorization: Bearer [redacted]');
    expect(scrub('nothing secret here, call +48601234567')).toBe('nothing secret here, call +48601234567');
  });

  // the patterns only run on a text that holds one of a few words: every name must still be caught
  it('catches every credential name, in any case, in each form', () => {
    const scrub = createScrub([]);
    const names = ['access_token', 'AccessToken', 'REFRESH_TOKEN', 'id_token', 'authToken', 'Token', 'api_key', 'APIKEY', 'apiKey', 'client_secret', 'ClientSecret', 'SECRET', 'Password', 'PASSWD', 'Authorization', 'X-Api-Key'];
    for (const n of names) {
      expect(scrub(`{"${n}": "v1"}`), n).toBe(`{"${n}": "[redacted]"}`);
      expect(scrub(`a=1&${n}=v1`), n).toBe(`a=1&${n}=[redacted]`);
      expect(scrub(`<${n}>v1</${n}>`), n).toBe(`<${n}>[redacted]</${n}>`);
    }
    expect(scrub('x: BEARER abcdefgh12345')).toBe('x: BEARER [redacted]');
    expect(scrub('x: Basic dXNlcjpwYXNz')).toBe('x: Basic [redacted]');
  });
});

describe('the TTS cache cap', () => {
  it('deletes the least recently used files when a new one takes it over its size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tts-cap-'));
    const id = (n: number) => n.toString(16).padStart(32, '0');
    const write = (n: number) => writeFileSync(join(dir, `${id(n)}.wav`), Buffer.alloc(100));
    const limit = new CacheLimit(dir, 250);
    write(1);
    limit.used(id(1), 100);
    write(2);
    limit.used(id(2), 100);
    limit.used(id(1), 100); // 1 is now the most recent
    write(3);
    limit.used(id(3), 100);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(existsSync(join(dir, `${id(2)}.wav`))).toBe(false);
        expect(readdirSync(dir).sort()).toEqual([`${id(1)}.wav`, `${id(3)}.wav`]);
        expect(limit.bytes).toBe(200);
        // a restart reads the folder back
        expect(new CacheLimit(dir, 250).bytes).toBe(200);
        resolve();
      }, 100),
    );
  });
});
