// The Markdown page of one bench run: issue 14's targets, knees, what a call costs each process,
// every rung, then the other scenarios. docs/performance.md explains how to read it.
import { callCpuMs, PAYS, routeOverBare, routeOverPeerCurl, rungsInOrder, targets } from './cost.js';

const LADDER = ['limit', 'peer-curl', 'bare', 'route'];
const PROCESS = { asterisk: 'Asterisk', service: 'service', bare: 'bare client', api: 'API stand-in' };

/** What the warm-up rungs before the ladder cost (they are in no other figure), or undefined without them. */
export function warmupLine(scenarios) {
  const warm = LADDER.filter((k) => scenarios[k]?.warmup).map((k) => [k, scenarios[k].warmup]);
  if (!warm.length) return undefined;
  const each = warm.map(([k, g]) => {
    const c = g.cpuSecondsPer1000Calls;
    const parts = PAYS[k].map((p) => `${PROCESS[p]} ${fmt(c[p])}`).join(', ');
    return `${k} ${g.calls.toLocaleString('en-US')} calls at ${g.offered}/s${g.clean ? '' : ' (with failures)'}: ${parts}`;
  });
  return `Warm-up before the ladder, in none of its figures (CPU ms per call): ${each.join('; ')}. The service, the bare client and the API stand-in are Node processes: V8 compiles their code once it has run a while, so a fresh process's first calls cost more than a running one's.`;
}

export function markdownReport(r) {
  const s = r.scenarios;
  const out = [];
  const m = r.machine;
  out.push(`# call-actions benchmark, ${r.date.slice(0, 16).replace('T', ' ')} UTC${r.quick ? ' (QUICK run)' : ''}`, '');
  out.push(`\`${r.command}\` — ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.asterisk ?? 'Asterisk'}, ${m.sipp ?? 'SIPp'}; load average at start ${m.loadavgAtStart.join(' / ')}; ${r.durationS} s in all.`, '');
  for (const n of r.notes) out.push(`> ${n}`, '');

  // a run of other scenarios only (--scenarios outbox) has no ladder to report
  if (LADDER.some((k) => s[k]) || s.memory) {
    out.push('## Targets (issue 14)', '');
    out.push('| target | this run | met? |', '|---|---|---|');
    for (const t of targets(r)) out.push(`| ${t.target} | ${t.measured} | ${t.undecided ? 'undecided: the latency bucket straddles the target' : t.met === null ? 'not measured' : t.met ? 'met' : '**not met**'} |`);
    out.push('');
  }

  const sum = r.summary;
  if (LADDER.some((k) => s[k])) {
    out.push('## Knees', '');
    out.push('The knee is the highest offered rate with no failed call and no SIP retransmission.', '');
    out.push('| scenario | knee (calls/s) | stopped |', '|---|---:|---|');
    for (const k of LADDER) {
      if (!s[k]) continue;
      if (s[k].pending) out.push(`| ${k} | pending | ${s[k].pending} |`);
      else out.push(`| ${k} | ${fmt(s[k].knee)}${s[k].kneeIsLadderTop ? ' (top of the ladder)' : ''} | ${s[k].stopped} |`);
    }
    out.push('');
    out.push(`**route / limit = ${fmt(sum.routeOverLimit)}**, **route / peer-curl = ${fmt(sum.routeOverPeerCurl)}** (at the knees).`, '');
  }
  if (sum.routingAtHalfKnee) {
    const h = sum.routingAtHalfKnee;
    const w = h.waitedMs;
    const split = w ? ` Split by who was waited on (p50 / p99 ms): the API ${fmt(w.api.p50)} / ${fmt(w.api.p99)}, Asterisk answering the hand-back ${fmt(w.asterisk.p50)} / ${fmt(w.asterisk.p99)}, **the service's own ${fmt(w.own.p50)} / ${fmt(w.own.p99)}** (outside those requests: its code, its event loop's queue, GC; each wait is timed from sending to the answer read, so it holds the service's own sending and reading too).` : '';
    out.push(`Routing latency at ${h.offered} calls/s (half the route knee or below): StasisStart → channel on its way p50 ${fmt(h.sinceStasisStartMs.p50)} ms, p99 ${fmt(h.sinceStasisStartMs.p99)} ms; of which from the event's arrival in the service p50 ${fmt(h.inServiceMs.p50)} ms, p99 ${fmt(h.inServiceMs.p99)} ms; service CPU ${fmt(h.serviceCpuMsPerCall)} ms per call.${split}`, '');
  }

  if (r.settings.pinned) out.push(`Pinned: ${r.settings.pinned}.`, '');
  if (r.idle) out.push(`Idle: with no calls the service used **${fmt(r.idle.cpuPercentOfACore)} % of a core** over ${fmt(r.idle.seconds)} s (WebSocket pings, timers, sweeps).`, '');
  const order = rungsInOrder(s, LADDER);
  const warm = warmupLine(s);
  if (warm) out.push(warm, '');
  if (order.length) {
    out.push('## CPU per call, by process', '');
    out.push('CPU ms per call (= CPU s per 1,000 calls). The total counts the processes that do the scenario\'s work: Asterisk for limit; Asterisk and the API stand-in for peer-curl; Asterisk, the ARI client (the bare one or the service) and the API stand-in for bare and route. In parentheses: a process that was only idling through that rung, not in the total.', '');
    out.push('| scenario | offered | Asterisk | service | bare client | API stand-in | total |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const { scenario: k, rung: g } of order) {
      const c = g.cpuSecondsPer1000Calls;
      const part = (p) => (PAYS[k].includes(p) ? fmt(c[p]) : c[p] === null || c[p] === undefined ? '–' : `(${fmt(c[p])})`);
      out.push(`| ${k}${g.clean ? '' : ' ✗'} | ${g.offered} | ${part('asterisk')} | ${part('service')} | ${part('bare')} | ${part('api')} | **${fmt(callCpuMs(k, c))}** |`);
    }
    out.push('');
  }
  const pairs = routeOverPeerCurl(s);
  if (pairs.length) {
    out.push('## Route / peer-curl, total CPU per call', '');
    out.push('| offered | peer-curl ms | route ms | route / peer-curl |', '|---:|---:|---:|---:|');
    for (const t of pairs) out.push(`| ${t.offered}${t.clean ? '' : ' ✗'} | ${fmt(t.peerCurlMs)} | ${fmt(t.routeMs)} | **${fmt(t.ratio)}** |`);
    out.push('');
  }

  const floor = routeOverBare(s);
  if (floor.length) {
    out.push('## Route against a bare ARI client', '');
    out.push('The bare client (`bench/lib/bare-ari.js`) does the least an ARI application can do to route a call: the same events in, the same API request and `continue` out, and nothing else (no log, no routing-log row, no metrics, no checks). What the service costs above it is what its features and safeguards cost; what the bare client costs is this machine\'s floor.', '');
    out.push('| offered | service CPU ms per call | bare client CPU ms per call | service / bare | route p50 / p99 ms | bare p50 / p99 ms |', '|---:|---:|---:|---:|---:|---:|');
    const p50p99 = (x) => (x ? `${fmt(x.p50)} / ${fmt(x.p99)}` : '–');
    for (const f of floor) out.push(`| ${f.offered}${f.clean ? '' : ' ✗'} | ${fmt(f.serviceMs)} | ${fmt(f.bareMs)} | **${fmt(f.ratio)}** | ${p50p99(f.route)} | ${p50p99(f.bare)} |`);
    out.push('', 'The bare client\'s latency is in whole milliseconds (Asterisk\'s timestamps and its own clock); the route\'s is the service\'s histogram bucket.', '');
  }

  if (r.pinnedLadder) out.push(...pinnedSection(s, r.pinnedLadder));

  if (order.length) {
    out.push('## Ladder', '');
    out.push('In service: from the StasisStart\'s arrival to Asterisk\'s answer to the hand-back, and the p99 of its parts: waiting on the API, waiting on Asterisk\'s answers, and the service\'s own (the rest). Event-loop delay: how late the service ran a 20 ms timer during a route rung.', '');
    out.push('| scenario | offered | achieved | failed | retrans | SIP 200 p50 / p99 ms | routing p50 / p99 ms | in service p50 / p99 ms | API / Asterisk / own p99 ms | event-loop delay p99 / max ms |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const { scenario: k, rung: g } of order) {
      const p50p99 = (x) => (x ? `${fmt(x.p50)} / ${fmt(x.p99)}` : '–');
      const loop = g.eventLoopDelayMs ? `${fmt(g.eventLoopDelayMs.p99)} / ${fmt(g.eventLoopDelayMs.max)}` : '–';
      const w = g.routing?.waitedMs;
      const parts = w ? `${fmt(w.api.p99)} / ${fmt(w.asterisk.p99)} / ${fmt(w.own.p99)}` : '–';
      out.push(`| ${k}${g.clean ? '' : ' ✗'} | ${g.offered} | ${fmt(g.achieved)} | ${g.failed} | ${g.retransmissions} | ${p50p99(g.sipResponseMs)} | ${p50p99(g.routing?.sinceStasisStartMs)} | ${p50p99(g.routing?.inServiceMs)} | ${parts} | ${loop} |`);
    }
    out.push('', '✗: a failed call or a retransmission in that rung.', '');
  }

  for (const [name, x] of Object.entries(s)) if (x?.error) out.push(`**${name} failed:** ${x.error}`, '');
  if (s['queue-sms'] && !s['queue-sms'].error) {
    const q = s['queue-sms'];
    out.push('## Queue # → SMS', '');
    out.push(`${q.callers} callers at ${q.offered} calls/s wait 1.5 s in queue "support" and press # (SIP INFO): ${q.successful} calls ok, ${q.failed} failed, ${q.smsRequests} SMS requests reached the provider stand-in. From the # leaving SIPp to the SMS request arriving: **p50 ${fmt(q.poundToSmsMs.p50)} ms, p99 ${fmt(q.poundToSmsMs.p99)} ms** (max ${fmt(q.poundToSmsMs.max)} ms, ${q.poundToSmsMs.samples} samples).`, '');
  }
  if (s.outbox && !s.outbox.error) out.push('## Outbox', '', ...outboxSection(s.outbox));
  if (s.memory && !s.memory.error) {
    const mm = s.memory;
    out.push('## Memory (service RSS)', '');
    if (mm.pending) out.push(mm.pending, '');
    else {
      out.push('| moment | RSS MB | V8 heap used MB |', '|---|---:|---:|');
      out.push(`| fresh | ${fmt(mm.fresh.rssMB)} | ${fmt(mm.fresh.heapUsedMB)} |`);
      out.push(`| ${mm.held.calls} calls held in Stasis (target ${mm.held.target}) | ${fmt(mm.held.rssMB)} | ${fmt(mm.held.heapUsedMB)} |`);
      out.push(`| after they left | ${fmt(mm.afterHold.rssMB)} | ${fmt(mm.afterHold.heapUsedMB)} |`);
      if (mm.afterTenth) out.push(`| after ${mm.afterTenth.callsSoFar} routed calls | ${fmt(mm.afterTenth.rssMB)} | ${fmt(mm.afterTenth.heapUsedMB)} |`);
      if (mm.afterHalf) out.push(`| after ${mm.afterHalf.callsSoFar} routed calls | ${fmt(mm.afterHalf.rssMB)} | ${fmt(mm.afterHalf.heapUsedMB)} |`);
      out.push(`| after ${mm.run.calls} routed calls | ${fmt(mm.end.rssMB)} | ${fmt(mm.end.heapUsedMB)} |`);
      out.push('');
      if (mm.breakdown) out.push(...memoryBreakdown(mm.breakdown));
      const rr = mm.run.routing;
      out.push(`${mm.run.calls} calls at ${mm.run.rate}/s${mm.run.shortened ? ` (${mm.run.shortened})` : ''}: ${mm.run.successful} ok, ${mm.run.failed} failed, ${mm.run.retransmissions} retransmissions; routing p50/p99 ${fmt(rr.sinceStasisStartMs?.p50)}/${fmt(rr.sinceStasisStartMs?.p99)} ms${rr.waitedMs ? ` (the service's own ${fmt(rr.waitedMs.own.p50)}/${fmt(rr.waitedMs.own.p99)} ms; waiting on the API p99 ${fmt(rr.waitedMs.api.p99)}, on Asterisk p99 ${fmt(rr.waitedMs.asterisk.p99)} ms)` : ''}. RSS from half-way to the end: ${fmt(mm.growthMB?.rss)} MB. Lowest V8 heap seen (≈ what survives a collection) in the first half ${fmt(mm.heapFloorMB?.firstHalf)} MB, in the second ${fmt(mm.heapFloorMB?.secondHalf)} MB (**${fmt(mm.heapFloorMB?.growth)} MB**). Asterisk RSS with the calls held: ${fmt(mm.held.asteriskRssMB)} MB. The service runs with AMI here (as examples/config.yaml).`, '');
      if (mm.run.loopDelayMs || mm.run.gcPausesMs) out.push(...stalls(mm.run), '');
    }
  }
  return out.join('\n') + '\n';
}

/** Where the RSS goes, at the start and after the run: the table of bench/run.js memoryParts(). */
function memoryBreakdown(breakdown) {
  const rows = Object.entries(breakdown);
  // runs before /stats had process.memory: heap total, external, the rest
  if (rows.some(([, b]) => b.anonMB === undefined)) {
    return [
      "Where the RSS goes (MB): V8 heap as reserved, memory held for JS objects outside it (Buffers, sockets), and the rest (Node and V8 code, SQLite and other native allocations, the allocator's free lists).",
      '',
      '| moment | RSS | V8 heap (used) | external (of which ArrayBuffers) | rest, native |',
      '|---|---:|---:|---:|---:|',
      ...rows.map(([k, b]) => `| ${k} | ${fmt(b.rssMB)} | ${fmt(b.heapTotalMB)} (${fmt(b.heapUsedMB)}) | ${fmt(b.externalMB)} (${fmt(b.arrayBuffersMB)}) | ${fmt(b.otherNativeMB)} |`),
      '',
    ];
  }
  return [
    "Where the RSS goes (MB, the service's /stats `process.memory`): file-backed pages are node's own code and data and the libraries' (shared, clean); the anonymous rest is V8's heap by space (resident: `new` where objects are born, `old` what survived, code), V8's own malloc, memory bound to JS objects outside the heap (Buffers; ArrayBuffers of it), SQLite's page cache (its bound: min(pages in the file, cache_size); better-sqlite3 does not report the pages actually cached), and the anonymous memory none of these explains (the allocator's free lists, Node's and the libraries' own buffers).",
    '',
    '| moment | RSS | file-backed | anonymous | heap new | heap old | heap code | V8 malloc | external (ArrayBuffers) | SQLite cache ≤ | other |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(([k, b]) => `| ${k} | ${fmt(b.rssMB)} | ${fmt(b.fileMB)} | ${fmt(b.anonMB)} | ${fmt(b.heapNewMB)} | ${fmt(b.heapOldMB)} | ${fmt(b.heapCodeMB)} | ${fmt(b.v8MallocMB)} | ${fmt(b.externalMB)} (${fmt(b.arrayBuffersMB)}) | ${fmt(b.sqliteCacheMB)} | ${fmt(b.otherAnonMB)} |`),
    '',
  ];
}

/** What held the event loop during the long run: its timers' lateness, and V8's pauses by kind. */
function stalls(run) {
  const lines = [];
  const l = run.loopDelayMs;
  if (l) lines.push(`Event-loop delay over the run (a timer every 20 ms while calls are in): p50 ${fmt(l.p50)}, p99 ${fmt(l.p99)}, max ${fmt(l.max)} ms (${l.samples} samples).`);
  const g = run.gcPausesMs;
  if (g && Object.keys(g).length) {
    lines.push('', '| V8 collection | pauses | total ms | p99 ms | max ms |', '|---|---:|---:|---:|---:|');
    for (const [kind, x] of Object.entries(g)) lines.push(`| ${kind} | ${x.count} | ${fmt(x.totalMs)} | ${fmt(x.p99)} | ${fmt(x.max)} |`);
  }
  return lines;
}

/** The outbox scenario's lines (bench/outbox.js outboxSummary()): also the page bench/outbox.js writes on its own. */
export function outboxSection(o) {
  const lines = [];
  if (o.pending) lines.push(o.pending, '');
  else {
    // results from before PostgreSQL had SQLite's figures at the top level and its settings in `sqlite`
    const sqlite = typeof o.sqlite === 'string' ? { ...o, store: o.sqlite, meets500: o.steadySmsPerSecond >= 500 } : o.sqlite;
    const backends = [['SQLite', sqlite], ['PostgreSQL', o.postgres]].filter(([, b]) => b);
    lines.push(`${o.messages} SMS per run to an instant stand-in, ${o.concurrency} in flight per worker, each worker its own process on a fresh database; ${backends.map(([name, b]) => `${name}: ${b.store}`).join('; ')}.`, '');
    lines.push(`| run | ${backends.map(([name]) => `${name} SMS/s | ratio to raw POSTs`).join(' | ')} |`, `|---|${backends.map(() => '---:|---:').join('|')}|`);
    lines.push(`| raw POSTs (baseline) | ${backends.map(() => `${fmt(o.baselineSmsPerSecond)} | 1`).join(' | ')} |`);
    const row = (label, k, r) => lines.push(`| ${label} | ${backends.map(([, b]) => `${fmt(b[k])} | ${fmt(b.ratioToBaseline[r])}`).join(' | ')} |`);
    row('outbox, steady', 'steadySmsPerSecond', 'steady');
    row('outbox, SIGTERM halfway', 'gracefulRestartSmsPerSecond', 'gracefulRestart');
    row('outbox, SIGKILL halfway', 'crashRestartSmsPerSecond', 'crashRestart');
    lines.push('');
    for (const [name, b] of backends) {
      lines.push(`${name}: ≥ 500 SMS/s steady ${b.meets500 ? 'met' : '**not met**'}; lost: ${b.lost}; sent twice after the crash: ${b.duplicatesAfterCrash}; durable accepts: ${fmt(b.acceptsPerSecond)}/s.`, '');
    }
    const pg = o.postgres;
    if (pg?.pair) {
      const t = pg.takeover;
      lines.push('Two workers, A and B, on one PostgreSQL outbox:', '');
      lines.push('| run | SMS/s | ratio to raw POSTs | delivered by A / B | sent twice |', '|---|---:|---:|---:|---:|');
      lines.push(`| together to the end | ${fmt(pg.pair.smsPerSecond)} | ${fmt(pg.pair.ratioToBaseline)} | ${pg.pair.byWorker.A} / ${pg.pair.byWorker.B} | ${pg.pair.duplicates} |`);
      lines.push(`| A SIGKILLed a third of the way | ${fmt(t.smsPerSecond)} | ${fmt(t.ratioToBaseline)} | ${t.byWorker.A} / ${t.byWorker.B} | ${t.duplicates} |`);
      lines.push('');
      lines.push(`Together: every message delivered exactly once (counted at the stand-in): **${pg.pair.exactlyOnce ? 'yes' : 'NO'}**. Takeover: A held ${t.held} messages under its lease when killed (${t.deliveredByABeforeKill} of them had already reached the stand-in); B delivered the first of them **${fmt(t.killToFirstByBMs)} ms** after the kill and the last ${fmt(t.killToAllTakenByBMs)} ms after it, against a lease of ${fmt(o.leaseMs)} ms (the first of those leases ran out ${fmt(t.firstLeaseRanOutAfterKillMs)} ms after the kill; B's first delivery came ${fmt(t.firstByBAfterLeaseRanOutMs)} ms later).`, '');
    }
  }
  return lines;
}

function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
  return String(v);
}

/**
 * The same ladder climbed twice, as the kernel placed the processes and pinned (the PBX and the
 * service on a core each, as when the service has a host of its own), side by side.
 */
function pinnedSection(s, p) {
  const out = ['## Not pinned and pinned, side by side', ''];
  if (p.error) return [...out, `**The pinned ladder failed:** ${p.error}`, ''];
  const q = p.scenarios;
  out.push(`Pinned: ${p.settings.pinned}. Every other figure on this page was measured with the kernel placing every process.`, '');
  out.push('| scenario | knee, not pinned | knee, pinned |', '|---|---:|---:|');
  const knee = (x) => (!x ? '–' : x.pending ? 'pending' : `${fmt(x.knee)}${x.kneeIsLadderTop ? ' (top)' : ''}`);
  for (const k of LADDER) if (s[k] || q[k]) out.push(`| ${k} | ${knee(s[k])} | ${knee(q[k])} |`);
  out.push('');
  const a = new Map(routeOverPeerCurl(s).map((t) => [t.offered, t]));
  const b = new Map(routeOverPeerCurl(q).map((t) => [t.offered, t]));
  const rates = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
  if (rates.length) {
    out.push('Total CPU per call (ms) of the processes that do the work, and the service\'s own share:', '');
    out.push('| offered | peer-curl, not pinned | route, not pinned | route / peer-curl | peer-curl, pinned | route, pinned | route / peer-curl, pinned | service, not pinned | service, pinned |');
    out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const mark = (t) => (t && !t.clean ? ' ✗' : '');
    for (const rate of rates) {
      const x = a.get(rate);
      const y = b.get(rate);
      out.push(`| ${rate} | ${fmt(x?.peerCurlMs)}${mark(x)} | ${fmt(x?.routeMs)} | **${fmt(x?.ratio)}** | ${fmt(y?.peerCurlMs)}${mark(y)} | ${fmt(y?.routeMs)} | **${fmt(y?.ratio)}** | ${fmt(x?.serviceMs)} | ${fmt(y?.serviceMs)} |`);
    }
    out.push('', '✗: a failed call or a retransmission in that rung (of either scenario).', '');
  }
  const warm = warmupLine(q);
  if (warm) out.push(`Pinned: ${warm}`, '');
  return out;
}
