import type { RetentionRule } from '../store/retention.js';

/** The routing log. */
export const routingRetention: RetentionRule = {
  log: 'routing',
  purge: async (tx, before) => (await tx.run('DELETE FROM route_log WHERE created_at < ?', [before])).changes,
};
