/**
 * The org's daily API allowance as Salesforce reports it on every REST answer
 * (`Sforce-Limit-Info: api-usage=used/limit`) (SF7). The last reading is kept in memory: it is
 * refreshed by the next answer after a restart, and /health warns when the remainder runs low.
 */

export interface UsageReading {
  used: number;
  limit: number;
  remaining: number;
  /** Epoch ms of the answer that carried it. */
  at: number;
}

export type UsageWarningRule = { percent: number } | { remaining: number };

const HEADER = /api-usage=(\d+)\/(\d+)/;

export function parseLimitInfo(header: string | undefined, at: number): UsageReading | undefined {
  const m = header ? HEADER.exec(header) : null;
  if (!m) return undefined;
  const used = Number(m[1]);
  const limit = Number(m[2]);
  return { used, limit, remaining: Math.max(0, limit - used), at };
}

export class UsageMeter {
  last: UsageReading | undefined;
  /** When Salesforce last answered REQUEST_LIMIT_EXCEEDED. */
  exceededAt: number | undefined;

  observe(header: string | undefined, at: number = Date.now()): void {
    const r = parseLimitInfo(header, at);
    // Answers can arrive out of order; the reading with the most used is the newest.
    if (r && (!this.last || r.at >= this.last.at || r.used >= this.last.used)) this.last = r;
  }

  /** What /health should say, if anything. */
  warnings(rule: UsageWarningRule, now: number = Date.now()): string[] {
    const out: string[] = [];
    const r = this.last;
    if (r) {
      const floor = 'percent' in rule ? (r.limit * rule.percent) / 100 : rule.remaining;
      if (r.remaining < floor) {
        out.push(`Salesforce API: ${r.remaining} of ${r.limit} daily requests left (${r.used} used; warning below ${'percent' in rule ? `${rule.percent}%` : rule.remaining}), as of ${new Date(r.at).toISOString()}`);
      }
    }
    if (this.exceededAt !== undefined && now - this.exceededAt < 3_600_000) {
      out.push(`Salesforce answered REQUEST_LIMIT_EXCEEDED at ${new Date(this.exceededAt).toISOString()}: activities wait in the queue until the allowance recovers`);
    }
    return out;
  }
}
