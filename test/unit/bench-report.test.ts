import { describe, expect, it } from 'vitest';

// bench/ is plain JavaScript without types: a computed specifier keeps tsc from asking for them
const reportUrl = new URL('../../bench/lib/report.js', import.meta.url).href;
const { markdownReport } = (await import(reportUrl)) as { markdownReport: (r: unknown) => string };
const costUrl = new URL('../../bench/lib/cost.js', import.meta.url).href;
const { summary } = (await import(costUrl)) as { summary: (r: unknown) => unknown };

interface Rung {
  offered: number;
  asterisk: number;
  service: number;
  api: number;
  routing?: { p50: number; p99: number; max: number };
  loopP99?: number;
}

function rung(g: Rung) {
  return {
    offered: g.offered,
    achieved: g.offered,
    failed: 0,
    retransmissions: 0,
    clean: true,
    sipResponseMs: { p50: 4, p99: 12 },
    cpuSecondsPer1000Calls: { asterisk: g.asterisk, service: g.service, api: g.api },
    ...(g.routing ? { routing: { sinceStasisStartMs: g.routing, inServiceMs: { p50: 0.5, p99: 1 } } } : {}),
    ...(g.loopP99 !== undefined ? { eventLoopDelayMs: { p50: 0.1, p99: g.loopP99, max: 30 } } : {}),
  };
}

/** A small run of peer-curl and route at 200 and 400 calls/s; `change` edits it before the report. */
function run(change: (r: any) => void = () => {}) {
  const r: any = {
    date: '2026-12-04T09:00:00.000Z',
    command: 'npm run bench -- --scenarios route,peer-curl --rates 200,400',
    machine: { cpus: 2, cpu: 'cpu', memoryGiB: 8, node: 'v20', loadavgAtStart: [0, 0, 0] },
    settings: { pinned: 'no (the kernel places every process)' },
    notes: [],
    durationS: 60,
    idle: { seconds: 10, cpuPercentOfACore: 0.3 },
    scenarios: {
      'peer-curl': { knee: 400, kneeIsLadderTop: true, stopped: 'top of the ladder', rungs: [rung({ offered: 200, asterisk: 3, service: 0.02, api: 0.5 }), rung({ offered: 400, asterisk: 2.75, service: 0.01, api: 0.25 })] },
      route: {
        knee: 400,
        kneeIsLadderTop: true,
        stopped: 'top of the ladder',
        rungs: [
          rung({ offered: 200, asterisk: 2.5, service: 1.5, api: 0.25, routing: { p50: 0.905, p99: 1.81, max: 12 }, loopP99: 3.32 }),
          rung({ offered: 400, asterisk: 2.25, service: 0.375, api: 0.125, routing: { p50: 2.153, p99: 63.169, max: 90 }, loopP99: 13.28 }),
        ],
      },
    },
    summary: { routeOverLimit: null, routeOverPeerCurl: 1 },
  };
  change(r);
  return r;
}

/** The rows of the Markdown table under `heading`, each as { column header: cell }. */
function table(md: string, heading: string): Array<Record<string, string>> {
  const lines = md.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `no section ${heading}`).toBeGreaterThanOrEqual(0);
  // the first table after the heading: its consecutive lines that start with '|'
  const after = lines.slice(start + 1);
  const first = after.findIndex((l) => l.startsWith('|'));
  const end = after.findIndex((l, i) => i > first && !l.startsWith('|'));
  const rows = after.slice(first, end);
  const cells = (l: string) => l.slice(1, -1).split('|').map((c) => c.trim());
  const [header, , ...body] = rows.map(cells);
  return body.map((b) => Object.fromEntries(header!.map((h, i) => [h, b[i] ?? ''])));
}

describe('bench report (bench/lib/report.js)', () => {
  it('splits CPU per call by process for every scenario and rate, with the total of the processes that work', () => {
    const rows = table(markdownReport(run()), '## CPU per call, by process');
    expect(rows.map((r) => `${r.scenario} ${r.offered}`)).toEqual(['peer-curl 200', 'route 200', 'peer-curl 400', 'route 400']);
    const route200 = rows.find((r) => r.scenario === 'route' && r.offered === '200')!;
    expect([route200.Asterisk, route200.service, route200['API stand-in'], route200.total]).toEqual(['2.5', '1.5', '0.25', '**4.25**']);
    // the service idles through peer-curl: shown, but not in peer-curl's total
    const peer200 = rows.find((r) => r.scenario === 'peer-curl' && r.offered === '200')!;
    expect([peer200.service, peer200.total]).toEqual(['(0.02)', '**3.5**']);
  });

  it('gives the route / peer-curl total-CPU ratio per rate in its own table', () => {
    const rows = table(markdownReport(run()), '## Route / peer-curl, total CPU per call');
    expect(rows).toEqual([
      { offered: '200', 'peer-curl ms': '3.5', 'route ms': '4.25', 'route / peer-curl': '**1.21**' },
      { offered: '400', 'peer-curl ms': '3', 'route ms': '2.75', 'route / peer-curl': '**0.92**' },
    ]);
  });

  it('shows the event-loop delay p99 of each route rung in the ladder', () => {
    const rows = table(markdownReport(run()), '## Ladder');
    const loop = (scenario: string, offered: string) => rows.find((r) => r.scenario === scenario && r.offered === offered)?.['event-loop delay p99 / max ms'];
    expect(loop('route', '200')).toBe('3.32 / 30');
    expect(loop('route', '400')).toBe('13.28 / 30');
    expect(loop('peer-curl', '200')).toBe('–');
  });

  it('splits the time in the service by who was waited on, in the ladder, at half the knee and beside the latency targets', () => {
    const split = run((r) => {
      r.scenarios.route.rungs[0].routing.waitedMs = { api: { p50: 0.3, p99: 4.1, max: 9 }, asterisk: { p50: 0.4, p99: 6.2, max: 11 }, own: { p50: 0.2, p99: 0.9, max: 3 } };
      r.summary = summary(r);
    });
    const md = markdownReport(split);
    const rows = table(md, '## Ladder');
    const parts = (offered: string) => rows.find((r) => r.scenario === 'route' && r.offered === offered)?.['API / Asterisk / own p99 ms'];
    expect(parts('200')).toBe('4.1 / 6.2 / 0.9');
    // a rung of a service that did not split its time
    expect(parts('400')).toBe('–');
    const t = Object.fromEntries(table(md, '## Targets (issue 14)').map((r) => [r.target, r['this run']]));
    expect(t['routing p99 ≤ 2 ms at 200 calls/s']).toBe("1.81 ms (the service's own p99: 0.9 ms)");
    expect(t['routing p50 ≤ 1 ms at 200 calls/s']).toBe("0.905 ms (the service's own p50: 0.2 ms)");
    expect(md).toContain("the API 0.3 / 4.1, Asterisk answering the hand-back 0.4 / 6.2, **the service's own 0.2 / 0.9**");
  });

  it('reports the warm-up rungs apart from the ladder, with what they cost each process that works', () => {
    const warmed = run((r) => {
      r.scenarios.route.warmup = { ...rung({ offered: 200, asterisk: 3.1, service: 2.4, api: 0.6 }), calls: 2000 };
      r.scenarios['peer-curl'].warmup = { ...rung({ offered: 200, asterisk: 3.9, service: 0.01, api: 0.9 }), calls: 2000, clean: false };
    });
    const md = markdownReport(warmed);
    expect(md).toContain('Warm-up before the ladder, in none of its figures (CPU ms per call): peer-curl 2,000 calls at 200/s (with failures): Asterisk 3.9, API stand-in 0.9; route 2,000 calls at 200/s: Asterisk 3.1, service 2.4, API stand-in 0.6.');
    // not a rung of the ladder: the CPU table has the same rows as without it
    expect(table(md, '## CPU per call, by process')).toEqual(table(markdownReport(run()), '## CPU per call, by process'));
    expect(markdownReport(run())).not.toContain('Warm-up');
  });

  it('reads the service against the bare ARI client at each rate both ran: CPU per call and latency', () => {
    const withBare = run((r) => {
      const bare = (offered: number, ms: number, p99: number) => ({ ...rung({ offered, asterisk: 2.4, service: 0.01, api: 0.25 }), cpuSecondsPer1000Calls: { asterisk: 2.4, service: 0.01, bare: ms, api: 0.25 }, routing: { sinceStasisStartMs: { p50: 1, p99, max: 20 } } });
      r.scenarios.bare = { knee: 400, kneeIsLadderTop: true, stopped: 'top of the ladder', rungs: [bare(200, 0.75, 5), { ...bare(400, 0.5, 6), clean: false }] };
    });
    const md = markdownReport(withBare);
    expect(table(md, '## Route against a bare ARI client')).toEqual([
      { offered: '200', 'service CPU ms per call': '1.5', 'bare client CPU ms per call': '0.75', 'service / bare': '**2**', 'route p50 / p99 ms': '0.905 / 1.81', 'bare p50 / p99 ms': '1 / 5' },
      { offered: '400 ✗', 'service CPU ms per call': '0.375', 'bare client CPU ms per call': '0.5', 'service / bare': '**0.75**', 'route p50 / p99 ms': '2.153 / 63.169', 'bare p50 / p99 ms': '1 / 6' },
    ]);
    // its own CPU column; the service idles through its rungs and is not in its total
    const cpu = table(md, '## CPU per call, by process').find((r) => r.scenario === 'bare' && r.offered === '200')!;
    expect([cpu.service, cpu['bare client'], cpu.total]).toEqual(['(0.01)', '0.75', '**3.4**']);
    expect(markdownReport(run())).not.toContain('## Route against a bare ARI client');
    // beside each target the bare client has a figure for: the floor of that run
    const t = Object.fromEntries(table(md, '## Targets (issue 14)').map((r) => [r.target, r['this run']]));
    expect(t['service CPU per routed call ≤ 0.4 ms at 200 calls/s']).toBe("1.5 ms (the bare ARI client's CPU: 0.75 ms)");
    expect(t['service CPU per routed call ≤ 0.4 ms at 400 calls/s']).toBe("0.375 ms (the bare ARI client's CPU: 0.5 ms)");
    expect(t['routing p99 ≤ 2 ms at 200 calls/s']).toBe("1.81 ms (the bare ARI client's p99: 5 ms)");
    expect(t['routing p50 ≤ 1 ms at 200 calls/s']).toBe("0.905 ms (the bare ARI client's p50: 1 ms)");
    expect(t['no routed call over 20 ms below the route knee']).toBe("12 ms (slowest per rung under 400 calls/s; the bare ARI client's slowest: 20 ms)");
  });

  it('keeps every rung when a rate is offered twice', () => {
    const twice = run((r) => {
      for (const k of ['peer-curl', 'route']) r.scenarios[k].rungs.push(...r.scenarios[k].rungs.map((g: any) => ({ ...g, cpuSecondsPer1000Calls: { ...g.cpuSecondsPer1000Calls, asterisk: 9 } })));
    });
    const rows = table(markdownReport(twice), '## CPU per call, by process');
    expect(rows.filter((r) => r.scenario === 'route').map((r) => `${r.offered}: ${r.Asterisk}`)).toEqual(['200: 2.5', '400: 2.25', '200: 9', '400: 9']);
  });

  it('checks the run against issue 14\'s targets from its own figures', () => {
    const met = (md: string) => Object.fromEntries(table(md, '## Targets (issue 14)').map((r) => [r.target, `${r['this run']} → ${r['met?']}`]));
    const t = met(markdownReport(run()));
    expect(t['service CPU per routed call ≤ 0.4 ms at 200 calls/s']).toBe('1.5 ms → **not met**');
    expect(t['service CPU per routed call ≤ 0.4 ms at 400 calls/s']).toBe('0.375 ms → met');
    expect(t["route's total CPU per call below peer-curl's at every rate"]).toBe('1.21, 0.92 (route / peer-curl at 200, 400 calls/s) → **not met**');
    expect(t['routing p99 ≤ 2 ms at 200 calls/s']).toBe('1.81 ms → met');
    expect(t['routing p50 ≤ 1 ms at 200 calls/s']).toBe('0.905 ms → met');
    expect(t['no routed call over 20 ms below the route knee']).toBe('12 ms (slowest per rung under 400 calls/s) → met');
    expect(t['service idle CPU ≤ 0.5 % of a core']).toBe('0.3 % of a core → met');
    expect(t['route knee ≥ peer-curl knee, not pinned']).toBe('route 400, peer-curl 400 calls/s (route at the top of the ladder) → met');
    expect(t['fresh service RSS ≤ 90 MB']).toBe('not in this run → not measured');

    // other figures, other verdicts: nothing is written in
    const worse = met(
      markdownReport(
        run((r) => {
          r.scenarios.route.rungs[1].cpuSecondsPer1000Calls.service = 0.5;
          r.scenarios.route.rungs[0].routing.sinceStasisStartMs = { p50: 1.317, p99: 2.153, max: 12 };
          r.idle.cpuPercentOfACore = 0.7;
          r.scenarios.route.knee = 200;
          r.scenarios.route.kneeIsLadderTop = false;
        }),
      ),
    );
    expect(worse['service CPU per routed call ≤ 0.4 ms at 400 calls/s']).toBe('0.5 ms → **not met**');
    expect(worse['routing p50 ≤ 1 ms at 200 calls/s']).toBe('1.317 ms → **not met**');
    // 2.153 ms is the upper bound of the bucket above 1.974 ms: the true p99 may be under 2 ms
    expect(worse['routing p99 ≤ 2 ms at 200 calls/s']).toBe('2.153 ms → undecided: the latency bucket straddles the target');
    expect(worse['service idle CPU ≤ 0.5 % of a core']).toBe('0.7 % of a core → **not met**');
    expect(worse['route knee ≥ peer-curl knee, not pinned']).toBe('route 200, peer-curl 400 calls/s → **not met**');
  });

  it('puts the pinned ladder beside the unpinned one, with its own knee target', () => {
    const withPinned = run((r) => {
      const pinned = run().scenarios;
      pinned.route.knee = 200;
      pinned.route.kneeIsLadderTop = false;
      pinned.route.rungs[1].clean = false;
      pinned.route.rungs[0].cpuSecondsPer1000Calls.service = 0.75;
      r.pinnedLadder = { settings: { pinned: 'Asterisk and SIPp on CPU 0, the service and the API stand-in on CPU 1' }, scenarios: pinned };
    });
    const md = markdownReport(withPinned);
    const knees = table(md, '## Not pinned and pinned, side by side');
    expect(knees).toEqual([
      { scenario: 'peer-curl', 'knee, not pinned': '400 (top)', 'knee, pinned': '400 (top)' },
      { scenario: 'route', 'knee, not pinned': '400 (top)', 'knee, pinned': '200' },
    ]);
    // the second table of the section: per rate, both placements
    const cpu = table(md.slice(md.indexOf('Total CPU per call (ms)')), 'Total CPU per call (ms) of the processes that do the work, and the service\'s own share:');
    expect(cpu.map((r) => [r.offered, r['route / peer-curl'], r['route / peer-curl, pinned'], r['service, not pinned'], r['service, pinned']])).toEqual([
      ['200', '**1.21**', '**1**', '1.5', '0.75'],
      ['400', '**0.92**', '**0.92**', '0.375', '0.375'],
    ]);
    expect(cpu[1]!['peer-curl, pinned']).toBe('3 ✗');
    const t = Object.fromEntries(table(md, '## Targets (issue 14)').map((r) => [r.target, `${r['this run']} → ${r['met?']}`]));
    expect(t['route knee ≥ peer-curl knee, pinned (the pinned ladder)']).toBe('route 200, peer-curl 400 calls/s → **not met**');
    expect(t['route knee ≥ peer-curl knee, not pinned']).toBe('route 400, peer-curl 400 calls/s (route at the top of the ladder) → met');
    // a run without the pinned ladder says so instead of passing
    const alone = Object.fromEntries(table(markdownReport(run()), '## Targets (issue 14)').map((r) => [r.target, r['met?']]));
    expect(alone['route knee ≥ peer-curl knee, pinned (the pinned ladder)']).toBe('not measured');
  });
});
