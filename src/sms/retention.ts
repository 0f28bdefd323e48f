import type { RetentionRule } from '../store/retention.js';

/** SMS history: settled messages (their attempts go with them) and the once-per-call keys. */
export const smsRetention: RetentionRule = {
  log: 'sms',
  purge: async (tx, before) =>
    (await tx.run("DELETE FROM sms_messages WHERE status NOT IN ('pending', 'sending') AND created_at < ?", [before])).changes +
    (await tx.run('DELETE FROM sms_once WHERE created_at < ?', [before])).changes,
};
