import type { RetentionRule } from '../store/retention.js';

/** SMS history: settled messages (their attempts go with them) and the once-per-call keys. */
export const smsRetention: RetentionRule = {
  log: 'sms',
  purge: (db, before) =>
    db.prepare("DELETE FROM sms_messages WHERE status NOT IN ('pending', 'sending') AND created_at < ?").run(before).changes +
    db.prepare('DELETE FROM sms_once WHERE created_at < ?').run(before).changes,
};
