import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { salesforceMigrations } from '../../src/crm/salesforce/store.js';
import { hookMigrations } from '../../src/hooks/store.js';
import { smsMigrations } from '../../src/sms/outbox.js';
import { openStore } from '../../src/store/sqlite.js';

/**
 * A migration runs once per database and is then remembered by id: changing its text later would
 * leave databases made before and after the change with different tables. The tables' SQL is now
 * partly generated (the lease columns come from src/queue/leased-table.ts), so this pins each
 * shipped migration to the text it shipped with.
 */
const SHIPPED: Record<string, string> = {
  'sms/001-outbox': '109ef21198ab4f946b4a9009c6ea33b8b0cc17270535f53a1e8270861db5347e',
  'sms/002-blocked-and-note': '51875ff6c1009fdf89b41b01af15caf8eb859de7f348b0e4b080291b7a8c716e',
  'sms/003-limit-indexes': '109390081cc934ec9d2f64211ca794c0c24c4f09e4bf2d9ab33f09b7d5745328',
  'hooks/001-runs': 'aa4c4cf763d86bd700afcc96a9c940e1461df4dad1aba25a1a71e5bd942385ee',
  'hooks/002-call-chain': 'c94d5f2bfb406b10dd85e949101afd07f65840a442d5475f2b5542788b569fef',
  'crm/salesforce/001-activities': '8bc466fc9a70ebe50bc497dccbf70a058901a9de0c091513a7189e852c1afcad',
};

describe('shipped migrations', () => {
  it('keep the exact text they shipped with', () => {
    const texts = Object.fromEntries(
      [...smsMigrations, ...hookMigrations, ...salesforceMigrations]
        .filter((m) => m.id in SHIPPED)
        .map((m) => [m.id, createHash('sha256').update(String(m.up)).digest('hex')]),
    );
    expect(texts).toEqual(SHIPPED);
  });
});

describe('sms/005-unknown-status', () => {
  it('rebuilds the SMS tables with their rows, attempts and receipts, and admits the unknown status', () => {
    const store = openStore('sqlite::memory:');
    try {
      const before = smsMigrations.filter((m) => m.id !== 'sms/005-unknown-status');
      store.migrate(before);
      const db = store.db;
      db.prepare(
        `INSERT INTO sms_messages (id, call_id, description, provider, recipient, text, status, not_before, created_at, updated_at, delivery_status)
         VALUES ('m1', 'c1', 'd', 'p', '+819012345678', 't', 'sent', 0, 1, 1, 'delivered')`,
      ).run();
      db.prepare("INSERT INTO sms_attempts (message_id, attempt, started_at, outcome) VALUES ('m1', 1, 0, 'ok')").run();
      db.prepare("INSERT INTO sms_receipts (message_id, received_at, status, provider_status) VALUES ('m1', 2, 'delivered', 'DELIVRD')").run();
      expect(() => db.prepare("UPDATE sms_messages SET status = 'unknown' WHERE id = 'm1'").run()).toThrow(/CHECK/);

      store.migrate(smsMigrations);
      expect(db.prepare('SELECT status, delivery_status FROM sms_messages').all()).toEqual([{ status: 'sent', delivery_status: 'delivered' }]);
      expect(db.prepare('SELECT count(*) AS n FROM sms_attempts').get()).toEqual({ n: 1 });
      expect(db.prepare('SELECT provider_status FROM sms_receipts').all()).toEqual([{ provider_status: 'DELIVRD' }]);
      db.prepare("UPDATE sms_messages SET status = 'unknown' WHERE id = 'm1'").run();
      // the references point at the rebuilt table: deleting the message still takes its attempts and receipts
      db.prepare("DELETE FROM sms_messages WHERE id = 'm1'").run();
      expect(db.prepare('SELECT (SELECT count(*) FROM sms_attempts) + (SELECT count(*) FROM sms_receipts) AS n').get()).toEqual({ n: 0 });
    } finally {
      store.close();
    }
  });
});
