import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Histogram, type HistogramSnapshot } from '../calls/metrics.js';

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * How long V8's collections held the main thread, by kind (minor: the new space's scavenge;
 * major: mark-compact's pause; incremental: a marking step), as cumulative histograms for /stats:
 * the bench subtracts two snapshots to tell a GC pause from the other things that stall the
 * event loop (a long commit, a log flush). prom-client's nodejs_gc_duration_seconds has the same
 * counts in buckets too coarse for pauses of a few milliseconds.
 */
export class GcPauses {
  private readonly kinds = new Map<string, Histogram>();
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS[(entry as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
      let h = this.kinds.get(kind);
      if (!h) this.kinds.set(kind, (h = new Histogram()));
      h.observe(entry.duration);
    }
  });

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.observer.disconnect();
  }

  snapshot(): Record<string, HistogramSnapshot> {
    return Object.fromEntries([...this.kinds].map(([kind, h]) => [kind, h.snapshot()]));
  }
}
