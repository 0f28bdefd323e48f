import { describe, expect, it } from 'vitest';
import { CallMetrics, Histogram, histogramDelta, LoopDelay, quantileMs } from '../../src/calls/metrics.js';

describe('metrics', () => {
  it('quantiles are bucket upper bounds, at most one bucket (9 %) above the true value', () => {
    const h = new Histogram();
    for (let i = 1; i <= 1000; i++) h.observe(i / 100); // 0.01 … 10 ms
    const s = h.snapshot();
    expect(s.count).toBe(1000);
    const p50 = quantileMs(s, 0.5)!;
    const p99 = quantileMs(s, 0.99)!;
    expect(p50).toBeGreaterThanOrEqual(5);
    expect(p50).toBeLessThan(5 * 1.1);
    expect(p99).toBeGreaterThanOrEqual(9.9);
    expect(p99).toBeLessThan(9.9 * 1.1);
    expect(quantileMs(new Histogram().snapshot(), 0.5)).toBeUndefined();
  });

  it('the difference of two snapshots is what was observed in between', () => {
    const h = new Histogram();
    for (let i = 0; i < 100; i++) h.observe(100);
    const before = h.snapshot();
    for (let i = 0; i < 10; i++) h.observe(1);
    const d = histogramDelta(h.snapshot(), before);
    expect(d.count).toBe(10);
    expect(d.sumMs).toBeCloseTo(10);
    expect(quantileMs(d, 0.99)).toBeLessThan(1.1);
  });

  it('counts how visits end per configured stage and pools the rest', () => {
    const m = new CallMetrics(new Set(['route']));
    m.entered('route');
    m.ended('route', 'left', { sinceStasisStartMs: 3, inServiceMs: 1.5, apiMs: 0, asteriskMs: 0, mediaMs: 0 });
    m.entered('route');
    m.ended('route', 'gone');
    m.entered('typo');
    m.ended('typo', 'fallback', { sinceStasisStartMs: 2, inServiceMs: 1, apiMs: 0, asteriskMs: 0, mediaMs: 0 });
    const s = m.snapshot();
    expect(s.route).toMatchObject({ entered: 2, left: 1, gone: 1, fallback: 0 });
    expect(s.route!.inService.count).toBe(1);
    expect(s['(unknown)']).toMatchObject({ entered: 1, fallback: 1 });
  });

  it('splits a visit\'s time in the service into the API\'s, Asterisk\'s and its own; the caller\'s time is in none', () => {
    const m = new CallMetrics(new Set(['route']));
    m.entered('route');
    m.ended('route', 'left', { sinceStasisStartMs: 3200, inServiceMs: 3100, apiMs: 40, asteriskMs: 8, mediaMs: 3000 });
    m.entered('route');
    // waits that overlapped add up to more than the visit: the service's own part is none, not negative
    m.ended('route', 'left', { sinceStasisStartMs: 12, inServiceMs: 10, apiMs: 9, asteriskMs: 4, mediaMs: 0 });
    const s = m.snapshot().route!;
    expect(s.api.sumMs).toBeCloseTo(49);
    expect(s.asterisk.sumMs).toBeCloseTo(12);
    expect(s.own.count).toBe(2);
    expect(s.own.sumMs).toBeCloseTo(52);
    expect(quantileMs(s.own, 0)).toBeLessThanOrEqual(0.01);
  });

  it('the loop delay histogram shows a stretch that blocked the loop', async () => {
    let busy = true;
    const loop = new LoopDelay(() => busy, 5);
    loop.wake();
    try {
      await new Promise((r) => setTimeout(r, 30));
      const before = loop.snapshot();
      const end = performance.now() + 80;
      while (performance.now() < end); // a synchronous stretch, as an fsync or a long parse would be
      await new Promise((r) => setTimeout(r, 30));
      const during = histogramDelta(loop.snapshot(), before);
      expect(during.count).toBeGreaterThan(0);
      expect(quantileMs(during, 1)).toBeGreaterThanOrEqual(60);
      // with no call in a stage it stops sampling: an idle service does not wake for it
      busy = false;
      await new Promise((r) => setTimeout(r, 20));
      const idle = loop.snapshot().count;
      await new Promise((r) => setTimeout(r, 30));
      expect(loop.snapshot().count).toBe(idle);
    } finally {
      loop.stop();
    }
  });
});
