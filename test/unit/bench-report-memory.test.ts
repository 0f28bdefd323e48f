import { describe, expect, it } from 'vitest';

// bench/ is plain JavaScript without types: a computed specifier keeps tsc from asking for them
const reportUrl = new URL('../../bench/lib/report.js', import.meta.url).href;
const { markdownReport } = (await import(reportUrl)) as { markdownReport: (r: unknown) => string };

const parts = (rss: number) => ({ rssMB: rss, heapUsedMB: 20, anonMB: rss - 47, fileMB: 47, heapNewMB: 2, heapOldMB: 25, heapCodeMB: 1.5, v8MallocMB: 0.8, externalMB: 4.5, arrayBuffersMB: 1, sqliteCacheMB: 0.2, otherAnonMB: 5 });

/** A memory-only run: fresh, 1,000 held, 20,000 routed; `breakdown` and `run` as given. */
function run(breakdown: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    date: '2026-12-04T09:00:00.000Z',
    command: 'npm run bench -- --scenarios memory',
    machine: { cpus: 2, cpu: 'cpu', memoryGiB: 8, node: 'v20', loadavgAtStart: [0, 0, 0] },
    settings: {},
    notes: [],
    durationS: 60,
    scenarios: {
      memory: {
        fresh: { rssMB: 85, heapUsedMB: 20 },
        breakdown,
        held: { calls: 1000, target: 1000, rssMB: 100, heapUsedMB: 30, asteriskRssMB: 200, sippFailed: 0 },
        afterHold: { rssMB: 95, heapUsedMB: 25 },
        run: { calls: 20000, rate: 200, successful: 20000, failed: 0, retransmissions: 0, routing: { sinceStasisStartMs: { p50: 1, p99: 4 } }, ...extra },
        end: { rssMB: 100, heapUsedMB: 25, activeCalls: 0 },
        growthMB: { rss: 1, heapUsed: 0 },
        heapFloorMB: { firstHalf: 18, secondHalf: 18, growth: 0 },
      },
    },
    summary: {},
  };
}

function rowsAfter(md: string, marker: string): string[][] {
  const lines = md.split('\n');
  const start = lines.findIndex((l) => l.includes(marker));
  expect(start, `no ${marker}`).toBeGreaterThanOrEqual(0);
  const after = lines.slice(start + 1);
  const first = after.findIndex((l) => l.startsWith('|'));
  const end = after.findIndex((l, i) => i > first && !l.startsWith('|'));
  return after.slice(first, end).map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

describe('bench report, memory section', () => {
  it("shows where the RSS goes as /stats process.memory splits it", () => {
    const md = markdownReport(run({ fresh: parts(85), end: parts(100) }));
    const [header, , fresh, end] = rowsAfter(md, 'Where the RSS goes');
    expect(header).toEqual(['moment', 'RSS', 'file-backed', 'anonymous', 'heap new', 'heap old', 'heap code', 'V8 malloc', 'external (ArrayBuffers)', 'SQLite cache ≤', 'other']);
    expect(fresh).toEqual(['fresh', '85', '47', '38', '2', '25', '1.5', '0.8', '4.5 (1)', '0.2', '5']);
    expect(end?.[3]).toBe('53');
  });

  it("still shows an older run's split (heap total, external, the rest)", () => {
    const md = markdownReport(run({ fresh: { rssMB: 100, heapTotalMB: 55, heapUsedMB: 32, externalMB: 4, arrayBuffersMB: 1, otherNativeMB: 41 } }));
    const [header, , fresh] = rowsAfter(md, 'Where the RSS goes');
    expect(header).toEqual(['moment', 'RSS', 'V8 heap (used)', 'external (of which ArrayBuffers)', 'rest, native']);
    expect(fresh).toEqual(['fresh', '100', '55 (32)', '4 (1)', '41']);
  });

  it('says what stalled the loop over the long run: its delay and V8 pauses by kind', () => {
    const md = markdownReport(
      run({ fresh: parts(85) }, { loopDelayMs: { p50: 0.2, p99: 3.1, max: 14, samples: 5000 }, gcPausesMs: { minor: { count: 900, totalMs: 400, p99: 1.2, max: 2.5 }, major: { count: 3, totalMs: 12, p99: 6, max: 6 } } }),
    );
    expect(md).toContain('p50 0.2, p99 3.1, max 14 ms (5000 samples)');
    const [header, , minor, major] = rowsAfter(md, 'Event-loop delay over the run');
    expect(header).toEqual(['V8 collection', 'pauses', 'total ms', 'p99 ms', 'max ms']);
    expect(minor).toEqual(['minor', '900', '400', '1.2', '2.5']);
    expect(major).toEqual(['major', '3', '12', '6', '6']);
  });
});
