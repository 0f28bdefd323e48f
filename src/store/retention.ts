import { z } from 'zod';
import { durationUpTo } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Queryable, StorePort } from './port.js';

/**
 * Retention: every log keeps its rows for a configurable age (90 days by default) and is purged
 * once a day. Each feature says how its own rows go (`FeatureRuntime.retention`); rows still in a
 * queue (pending, sending) are never purged, whatever their age.
 */

const NINETY_DAYS = 90 * 86_400_000;
/** How long rows are kept: an age compared with, never a timer, so it may be years. */
const age = durationUpTo(10 * 366 * 86_400_000).default(NINETY_DAYS);

export const RETENTION_LOGS = ['sms', 'hooks', 'routing', 'salesforce', 'audit'] as const;
export type RetentionLog = (typeof RETENTION_LOGS)[number];

export const retentionSchema = z
  .object({
    sms: age.describe('SMS history and attempts'),
    hooks: age.describe('hook runs, their attempts and call variables'),
    routing: age.describe('the routing log'),
    salesforce: age.describe('Salesforce activities and attempts'),
    audit: age.describe('the audit log of admin actions'),
  })
  .strict()
  .prefault({})
  .describe('how long each log keeps its rows (e.g. 30d); purged daily');

export type RetentionConfig = z.output<typeof retentionSchema>;

export interface RetentionRule {
  log: RetentionLog;
  /** Deletes the rows settled before `before` (epoch ms), in the transaction `tx`; resolves to how many went. */
  purge(tx: Queryable, before: number): Promise<number>;
}

export const PURGE_EVERY_MS = 86_400_000;

export const auditRetention: RetentionRule = {
  log: 'audit',
  purge: async (tx, before) => (await tx.run('DELETE FROM audit_log WHERE at < ?', [before])).changes,
};

/** One pass over every rule; what a daily timer calls. */
export async function purgeOnce(store: StorePort, rules: readonly RetentionRule[], ages: RetentionConfig, now = Date.now(), log?: Logger): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of rules) {
    const n = await store.transaction((tx) => r.purge(tx, now - ages[r.log]));
    out[r.log] = (out[r.log] ?? 0) + n;
  }
  if (Object.values(out).some((n) => n > 0)) log?.info({ purged: out }, 'retention: old log rows purged');
  return out;
}

/** Purges a minute after start, then daily; stop() ends the timer. */
export function startRetention(store: StorePort, rules: readonly RetentionRule[], ages: RetentionConfig, log?: Logger): { stop(): void } {
  const run = () => {
    purgeOnce(store, rules, ages, Date.now(), log).catch((e: unknown) => log?.error({ err: e }, 'retention: purge failed'));
  };
  const first = setTimeout(run, 60_000);
  const daily = setInterval(run, PURGE_EVERY_MS);
  first.unref();
  daily.unref();
  return {
    stop() {
      clearTimeout(first);
      clearInterval(daily);
    },
  };
}
