import type { RetentionRule } from '../store/retention.js';

/** The routing log. */
export const routingRetention: RetentionRule = {
  log: 'routing',
  purge: (db, before) => db.prepare('DELETE FROM route_log WHERE created_at < ?').run(before).changes,
};
