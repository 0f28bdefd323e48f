import type { RetentionRule } from '../../store/retention.js';

/** Salesforce activities that are done or failed (their attempts go with them). */
export const salesforceRetention: RetentionRule = {
  log: 'salesforce',
  purge: async (tx, before) => (await tx.run("DELETE FROM sf_activities WHERE status IN ('done', 'failed') AND created_at < ?", [before])).changes,
};
