import type { CountryCode } from 'libphonenumber-js';
import { readLogQuery } from '../history/query.js';
import { normaliseNumber } from '../phone.js';
import type { StorePort } from '../store/port.js';
import { whereClause } from '../store/where.js';
import type { AttemptOutcome, SmsStatus } from './outbox.js';
import type { DeliveryStatus } from './provider.js';
import { receiptsOf, type ReceiptEntry } from './receipts.js';

/**
 * The SMS history (CA6, S1): what was sent, to whom, by which step, and what the provider
 * answered on every attempt. BIZTEL sends its users to the SMS vendor for this; we keep it.
 */

export interface HistoryFilter {
  callId?: string;
  /** The SMS step's description, matched exactly. */
  description?: string;
  recipient?: string;
  status?: SmsStatus | readonly SmsStatus[];
  /** Accepted at or after this epoch ms. */
  since?: number;
  /** Accepted before this epoch ms. */
  until?: number;
  /** Default 50, at most 500. */
  limit?: number;
  offset?: number;
}

export interface HistoryAttempt {
  attempt: number;
  startedAt: number;
  finishedAt: number | null;
  outcome: AttemptOutcome;
  reason: string | null;
  httpStatus: number | null;
  /** The start of the provider's answer (at most 2 KiB). */
  body: string | null;
  latencyMs: number | null;
  error: string | null;
}

export interface HistoryEntry {
  id: string;
  /** When the message was accepted (or the skip recorded), epoch ms. */
  time: number;
  callId: string;
  description: string;
  provider: string;
  recipient: string | null;
  sender: string | null;
  text: string;
  status: SmsStatus;
  attempts: number;
  /** Why it failed or was skipped; the classification reason when sent. */
  reason: string | null;
  settledAt: number | null;
  providerMessageId: string | null;
  /** How the text came about when that matters, e.g. the customer's API failed and the fallback was used. */
  note: string | null;
  /** The most recent attempt that got an answer or an error, if any. */
  lastAnswer: HistoryAttempt | null;
  /** Every attempt to hand the message to the provider (`attempts` is their count). */
  attemptLog: HistoryAttempt[];
  /**
   * What the provider's delivery receipts say: the furthest state reached, when the service
   * received the receipt that moved it there, and the provider's error code; null before any.
   */
  delivery: { status: DeliveryStatus; at: number; errorCode: string | null } | null;
  /** Every delivery receipt, oldest first, as the provider wrote its state. */
  receipts: ReceiptEntry[];
}

export interface HistoryPage {
  total: number;
  entries: HistoryEntry[];
}

export const MAX_HISTORY_LIMIT = 500;

interface MessageRow {
  id: string;
  created_at: number;
  call_id: string;
  description: string;
  provider: string;
  recipient: string | null;
  sender: string | null;
  text: string;
  status: SmsStatus;
  attempts: number;
  reason: string | null;
  settled_at: number | null;
  provider_message_id: string | null;
  note: string | null;
  delivery_status: DeliveryStatus | null;
  delivery_at: number | null;
  delivery_error: string | null;
}

interface AttemptRow {
  message_id: string;
  attempt: number;
  started_at: number;
  finished_at: number | null;
  outcome: AttemptOutcome;
  reason: string | null;
  http_status: number | null;
  body: string | null;
  latency_ms: number | null;
  error: string | null;
}

/** Newest first. */
export async function querySmsHistory(store: StorePort, filter: HistoryFilter = {}): Promise<HistoryPage> {
  const statuses = typeof filter.status === 'string' ? [filter.status] : filter.status;
  if (statuses?.length === 0) return { total: 0, entries: [] };
  const { clause, args } = whereClause({ call_id: filter.callId, description: filter.description, recipient: filter.recipient }, { status: statuses }, filter);
  const limit = Math.min(Math.max(0, Math.floor(filter.limit ?? 50)), MAX_HISTORY_LIMIT);
  const offset = Math.max(0, Math.floor(filter.offset ?? 0));

  const { total } = (await store.one<{ total: number }>(`SELECT COUNT(*) AS total FROM sms_messages ${clause}`, args))!;
  // the same millisecond: SQLite's insertion order; PostgreSQL has none to offer, the id decides
  const columns = `id, created_at, call_id, description, provider, recipient, sender, text, status, attempts,
              reason, settled_at, provider_message_id, note, delivery_status, delivery_at, delivery_error`;
  const rows = await store.query<MessageRow>(
    {
      sqlite: `SELECT ${columns} FROM sms_messages ${clause} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
      postgres: `SELECT ${columns} FROM sms_messages ${clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
    },
    [...args, limit, offset],
  );
  return { total, entries: await withAttempts(store, rows) };
}

export async function getSmsMessage(store: StorePort, id: string): Promise<HistoryEntry | undefined> {
  const row = await store.one<MessageRow>(
    `SELECT id, created_at, call_id, description, provider, recipient, sender, text, status, attempts,
            reason, settled_at, provider_message_id, note, delivery_status, delivery_at, delivery_error
       FROM sms_messages WHERE id = ?`,
    [id],
  );
  return row ? (await withAttempts(store, [row]))[0] : undefined;
}

async function withAttempts(store: StorePort, rows: MessageRow[]): Promise<HistoryEntry[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const attempts = await store.query<AttemptRow>(
    {
      sqlite: `SELECT message_id, attempt, started_at, finished_at, outcome, reason, http_status, body, latency_ms, error
         FROM sms_attempts WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, attempt`,
      postgres: `SELECT message_id, attempt, started_at, finished_at, outcome, reason, http_status, body, latency_ms, error
         FROM sms_attempts WHERE message_id = ANY(?::text[]) ORDER BY message_id, attempt`,
    },
    [store.kind === 'sqlite' ? JSON.stringify(ids) : ids],
  );
  const receipts = await receiptsOf(store, ids);
  const byMessage = new Map<string, HistoryAttempt[]>();
  for (const a of attempts) {
    let list = byMessage.get(a.message_id);
    if (!list) byMessage.set(a.message_id, (list = []));
    list.push({
      attempt: a.attempt,
      startedAt: a.started_at,
      finishedAt: a.finished_at,
      outcome: a.outcome,
      reason: a.reason,
      httpStatus: a.http_status,
      body: a.body,
      latencyMs: a.latency_ms,
      error: a.error,
    });
  }
  return rows.map((r) => {
    const log = byMessage.get(r.id) ?? [];
    const answered = log.filter((a) => a.httpStatus !== null || a.error !== null);
    return {
      id: r.id,
      time: r.created_at,
      callId: r.call_id,
      description: r.description,
      provider: r.provider,
      recipient: r.recipient,
      sender: r.sender,
      text: r.text,
      status: r.status,
      attempts: r.attempts,
      reason: r.reason,
      settledAt: r.settled_at,
      providerMessageId: r.provider_message_id,
      note: r.note,
      lastAnswer: answered[answered.length - 1] ?? null,
      attemptLog: log,
      delivery: r.delivery_status === null ? null : { status: r.delivery_status, at: r.delivery_at!, errorCode: r.delivery_error },
      receipts: receipts.get(r.id) ?? [],
    };
  });
}

export const SMS_STATUSES: readonly SmsStatus[] = ['pending', 'sending', 'sent', 'failed', 'unknown', 'skipped', 'blocked'];

/**
 * `/sms/history?description=…&recipient=…&callId=…&status=sent&status=failed&since=ISO&until=ISO&limit=&offset=`.
 * A parameter it does not know, a status that does not exist or a time that does not parse is a
 * RangeError (answered 400): a typo must not silently widen the query to everything.
 */
export function historyFilter(q: URLSearchParams, defaultCountry?: CountryCode): HistoryFilter {
  const r = readLogQuery(q, ['description', 'recipient', 'status']);
  const statuses = r.oneOf('status', SMS_STATUSES);
  const number = r.text('recipient');
  return {
    description: r.text('description'),
    recipient: number === undefined ? undefined : normaliseNumber(number, defaultCountry),
    status: statuses.length ? statuses : undefined,
    ...r.page(),
  };
}
