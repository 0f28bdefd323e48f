import type { StorePort } from '../store/port.js';
import type { Migration } from '../store/port.js';
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
    // seq: the order receipts of one millisecond arrived in, which SQLite's rowid gives
    postgres: `
      ALTER TABLE sms_messages ADD COLUMN delivery_status TEXT;
      ALTER TABLE sms_messages ADD COLUMN delivery_at BIGINT;
      ALTER TABLE sms_messages ADD COLUMN delivery_error TEXT;
      CREATE INDEX sms_messages_provider_id ON sms_messages (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
      CREATE TABLE sms_receipts (
        seq BIGSERIAL PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES sms_messages (id) ON DELETE CASCADE,
        received_at BIGINT NOT NULL,
        status TEXT,
        provider_status TEXT NOT NULL,
        error_code TEXT
      );
      CREATE INDEX sms_receipts_message ON sms_receipts (message_id, received_at);
    `,
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
export function recordReceipt(store: StorePort, provider: string, r: DeliveryReceipt, now = Date.now()): Promise<ReceiptOutcome> {
  type Found = ReceiptMessage & { current: DeliveryStatus | null };
  return store.transaction(async (tx): Promise<ReceiptOutcome> => {
    // FOR UPDATE on PostgreSQL: two receipts of one message at once must not both read the old status
    const lock = tx.kind === 'postgres' ? ' FOR UPDATE' : '';
    const row =
      (await tx.one<Found>(
        `SELECT id, call_id AS "callId", description, recipient, delivery_status AS current FROM sms_messages
          WHERE provider = ? AND provider_message_id = ?${lock}`,
        [provider, r.messageId],
      )) ??
      (await tx.one<Found>(`SELECT id, call_id AS "callId", description, recipient, delivery_status AS current FROM sms_messages WHERE provider = ? AND id = ?${lock}`, [
        provider,
        r.messageId,
      ]));
    if (!row) return { kind: 'unknown' };
    const { current, ...message } = row;
    await tx.run('INSERT INTO sms_receipts (message_id, received_at, status, provider_status, error_code) VALUES (?, ?, ?, ?, ?)', [
      row.id,
      now,
      r.status ?? null,
      r.providerStatus,
      r.errorCode ?? null,
    ]);
    const changed = r.status !== undefined && r.status !== current && (current === null || RANK[r.status] >= RANK[current]);
    if (changed) {
      await tx.run('UPDATE sms_messages SET delivery_status = ?, delivery_at = ?, delivery_error = ? WHERE id = ?', [r.status!, now, r.errorCode ?? null, row.id]);
    }
    return { kind: 'recorded', message, changed, status: changed ? r.status! : current, previous: current };
  }, { immediate: true });
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
export async function receiptsOf(store: StorePort, ids: readonly string[]): Promise<Map<string, ReceiptEntry[]>> {
  const out = new Map<string, ReceiptEntry[]>();
  if (ids.length === 0) return out;
  const columns = 'message_id AS id, received_at AS at, status, provider_status AS "providerStatus", error_code AS "errorCode"';
  const rows = await store.query<ReceiptEntry & { id: string }>(
    {
      sqlite: `SELECT ${columns} FROM sms_receipts WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, received_at, rowid`,
      // the PostgreSQL table numbers its rows (seq) for this order
      postgres: `SELECT ${columns} FROM sms_receipts WHERE message_id = ANY(?::text[]) ORDER BY message_id, received_at, seq`,
    },
    [store.kind === 'sqlite' ? JSON.stringify(ids) : [...ids]],
  );
  for (const { id, ...entry } of rows) {
    let list = out.get(id);
    if (!list) out.set(id, (list = []));
    list.push(entry);
  }
  return out;
}
