import type { RetentionRule } from '../store/retention.js';

/** Hook runs that have settled (their attempts go with them) and the call variables they left. */
export const hooksRetention: RetentionRule = {
  log: 'hooks',
  purge: async (tx, before) =>
    (await tx.run("DELETE FROM hook_runs WHERE status NOT IN ('pending', 'sending') AND created_at < ?", [before])).changes +
    (await tx.run('DELETE FROM call_vars WHERE updated_at < ?', [before])).changes,
};
