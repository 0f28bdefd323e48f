// The README's "latest run" block, written from one run's JSON and from nothing else, so that the
// README cannot quote a figure that run did not measure (test/unit/bench-readme.test.ts checks the
// block against the file it names). `node bench/run.js --readme bench/results/<date>.json` writes it.
import { routeOverBare, routeOverPeerCurl, summary, targets } from './cost.js';

export const BEGIN = '<!-- bench:latest: written by `node bench/run.js --readme FILE.json` from that run alone; do not edit by hand -->';
export const END = '<!-- /bench:latest -->';

/** The block for the run in `result`, read from `file` (a path relative to the repository). */
export function readmeBlock(result, file) {
  const s = result.scenarios;
  const m = result.machine;
  const out = [BEGIN, ''];
  const when = result.date.slice(0, 16).replace('T', ' ');
  out.push(`Latest run: [${when} UTC](${file.replace(/\.json$/, '.md')}) (\`${result.command}\`${result.quick ? ', a QUICK run' : ''}), ${fmt(result.durationS / 60, 1)} min on ${m.cpus} × ${m.cpu}, load average at start ${m.loadavgAtStart[0]}.`, '');
  out.push('| target (issue 14) | this run | met? |', '|---|---|---|');
  for (const t of targets(result)) out.push(`| ${t.target} | ${t.measured} | ${t.undecided ? 'undecided (latency bucket straddles it)' : t.met === null ? 'not measured' : t.met ? 'met' : '**not met**'} |`);
  out.push('');

  const rows = [];
  const knees = (sc) => ['limit', 'peer-curl', 'bare', 'route'].filter((k) => sc?.[k]?.rungs).map((k) => `${k} ${fmt(sc[k].knee)}`).join(', ');
  if (knees(s)) rows.push(['knees, calls/s (no failure, no retransmission)', `${knees(s)}${result.pinnedLadder?.scenarios && knees(result.pinnedLadder.scenarios) ? `; pinned: ${knees(result.pinnedLadder.scenarios)}` : ''}`]);
  const routeRungs = s.route?.rungs ?? [];
  if (routeRungs.length) rows.push(['service CPU per routed call, ms', routeRungs.map((g) => `${fmt(g.cpuSecondsPer1000Calls.service)} at ${g.offered}/s${g.clean ? '' : ' ✗'}`).join(', ')]);
  const pairs = routeOverPeerCurl(s);
  if (pairs.length) rows.push(['route / peer-curl, total CPU per call', pairs.map((p) => `${fmt(p.ratio)} at ${p.offered}/s${p.clean ? '' : ' ✗'}`).join(', ')]);
  const floor = routeOverBare(s);
  if (floor.length) rows.push(['service CPU per call / a bare ARI client\'s (the same requests, nothing else); latency p50 / p99 ms, route and bare', floor.map((f) => `${fmt(f.ratio)} at ${f.offered}/s (${fmt(f.serviceMs)} / ${fmt(f.bareMs)} ms; ${fmt(f.route?.p50)} / ${fmt(f.route?.p99)} and ${fmt(f.bare?.p50)} / ${fmt(f.bare?.p99)})${f.clean ? '' : ' ✗'}`).join(', ')]);
  const h = summary(result).routingAtHalfKnee;
  if (h) {
    const w = h.waitedMs;
    const split = w ? `; waiting on the API p99 ${fmt(w.api.p99)} ms, on Asterisk's answers p99 ${fmt(w.asterisk.p99)} ms, the service's own p50 ${fmt(w.own.p50)} ms, p99 ${fmt(w.own.p99)} ms` : '';
    rows.push([`routing latency at ${h.offered} calls/s (half the route knee or below)`, `p50 ${fmt(h.sinceStasisStartMs.p50)} ms, p99 ${fmt(h.sinceStasisStartMs.p99)} ms${split}`]);
  }
  const q = s['queue-sms'];
  if (q && !q.error) rows.push(['queue # → SMS request at the provider', `p50 ${fmt(q.poundToSmsMs.p50)} ms, p99 ${fmt(q.poundToSmsMs.p99)} ms (${q.callers} callers)`]);
  const o = s.outbox;
  if (o && !o.error && !o.pending && o.sqlite?.steadySmsPerSecond !== undefined) {
    const b = (name, x) => `${name} ${fmt(x.steadySmsPerSecond)} SMS/s steady (${fmt(x.ratioToBaseline.steady)} × raw POSTs)`;
    const pair = o.postgres?.pair ? `; two workers on one PostgreSQL outbox ${fmt(o.postgres.pair.smsPerSecond)}, each SMS exactly once: ${o.postgres.pair.exactlyOnce ? 'yes' : 'NO'}` : '';
    rows.push([`outbox, ${o.concurrency} in flight`, [b('SQLite', o.sqlite), o.postgres ? b('PostgreSQL', o.postgres) : undefined].filter(Boolean).join(', ') + pair]);
  }
  const mm = s.memory;
  if (mm && !mm.error && !mm.pending) rows.push(['service RSS', `fresh ${fmt(mm.fresh.rssMB)} MB; ${fmt(mm.held.rssMB)} MB with ${mm.held.calls} calls held in Stasis; ${fmt(mm.end.rssMB)} MB after ${mm.run.calls} routed calls at ${mm.run.rate}/s`]);
  if (rows.length) {
    out.push('| also measured in that run | |', '|---|---|');
    for (const [k, v] of rows) out.push(`| ${k} | ${v} |`);
    out.push('', '✗: a rung with failed calls or SIP retransmissions (past a knee).', '');
  }
  out.push(END);
  return out.join('\n');
}

/** `readme` with its block replaced by `block`; throws when the README has no block to replace. */
export function replaceBlock(readme, block) {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no block between "${BEGIN}" and "${END}"`);
  return readme.slice(0, a) + block + readme.slice(b + END.length);
}

/** The results file a README's block was written from. */
export function blockSource(readme) {
  const a = readme.indexOf(BEGIN);
  const m = /\]\((bench\/results\/[^)]+)\.md\)/.exec(readme.slice(a));
  return a < 0 || !m ? undefined : `${m[1]}.json`;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return '–';
  if (digits !== undefined) return v.toFixed(digits);
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
  return String(v);
}
