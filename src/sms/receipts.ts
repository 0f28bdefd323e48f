import type { Migration, Store } from '../store/sqlite.js';
import type { DeliveryReceipt, DeliveryStatus } from './provider.js';

/**
 * Delivery receipts (TeleCube and BIZTEL users ask "did it arrive?"). Every receipt is kept in
 * `sms_receipts`; the message's `delivery_status` moves only forward (queued → sent → a final
 * state), because providers send receipts at once from several machines and they arrive out of
 * order: a late "sent" never hides a "delivered".
 */

export const receiptMigrations: readonly Migration[] = [
  {
    id: 'sms/004-delivery-receipts',
    up: `
      ALTER TABLE sms_messages ADD COLUMN delivery_status TEXT;
      ALTER TABLE sms_messages ADD COLUMN delivery_at INTEGER;
      ALTER TABLE sms_messages ADD COLUMN delivery_error TEXT;
      CREATE INDEX sms_messages_provider_id ON sms_messages (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
      CREATE TABLE sms_receipts (
        message_id TEXT NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
        received_at INTEGER NOT NULL,
        status TEXT,
        provider_status TEXT NOT NULL,
        error_code TEXT
      );
      CREATE INDEX sms_receipts_message ON sms_receipts (message_id, received_at);
    `,
  },
];

const RANK: Record<DeliveryStatus, number> = { queued: 1, sent: 2, delivered: 3, undelivered: 3, failed: 3 };

/** The message a receipt was about, as hooks and the log need it. */
export interface ReceiptMessage {
  id: string;
  callId: string;
  description: string;
  recipient: string;
}

export type ReceiptOutcome =
  | { kind: 'unknown' }
  /** Kept; `changed` when the message's delivery status moved (to `status`). */
  | { kind: 'recorded'; message: ReceiptMessage; changed: boolean; status: DeliveryStatus | null; previous: DeliveryStatus | null };

/**
 * Records one receipt of `provider`'s. The id is the provider's (what its send answer carried),
 * or the outbox's own when the provider echoes that back.
 */
export function recordReceipt(store: Store, provider: string, r: DeliveryReceipt, now = Date.now()): ReceiptOutcome {
  const db = store.db;
  return db.transaction((): ReceiptOutcome => {
    const row = (db
      .prepare(
        `SELECT id, call_id AS callId, description, recipient, delivery_status AS current FROM sms_messages
          WHERE provider = ? AND provider_message_id = ?`,
      )
      .get(provider, r.messageId) ??
      db
        .prepare(`SELECT id, call_id AS callId, description, recipient, delivery_status AS current FROM sms_messages WHERE provider = ? AND id = ?`)
        .get(provider, r.messageId)) as (ReceiptMessage & { current: DeliveryStatus | null }) | undefined;
    if (!row) return { kind: 'unknown' };
    const { current, ...message } = row;
    db.prepare('INSERT INTO sms_receipts (message_id, received_at, status, provider_status, error_code) VALUES (?, ?, ?, ?, ?)').run(
      row.id,
      now,
      r.status ?? null,
      r.providerStatus,
      r.errorCode ?? null,
    );
    const changed = r.status !== undefined && r.status !== current && (current === null || RANK[r.status] >= RANK[current]);
    if (changed) {
      db.prepare('UPDATE sms_messages SET delivery_status = ?, delivery_at = ?, delivery_error = ? WHERE id = ?').run(r.status!, now, r.errorCode ?? null, row.id);
    }
    return { kind: 'recorded', message, changed, status: changed ? r.status! : current, previous: current };
  })();
}

export interface ReceiptEntry {
  /** When the service received it, epoch ms. */
  at: number;
  /** Ours, or null when the provider's state maps to none. */
  status: DeliveryStatus | null;
  providerStatus: string;
  errorCode: string | null;
}

/** Every receipt of these messages, oldest first. */
export function receiptsOf(store: Store, ids: readonly string[]): Map<string, ReceiptEntry[]> {
  const out = new Map<string, ReceiptEntry[]>();
  if (ids.length === 0) return out;
  const rows = store.db
    .prepare(
      `SELECT message_id AS id, received_at AS at, status, provider_status AS providerStatus, error_code AS errorCode
         FROM sms_receipts WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, received_at, rowid`,
    )
    .all(JSON.stringify(ids)) as Array<ReceiptEntry & { id: string }>;
  for (const { id, ...entry } of rows) {
    let list = out.get(id);
    if (!list) out.set(id, (list = []));
    list.push(entry);
  }
  return out;
}
