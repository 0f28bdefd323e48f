// What a call costs the box, and issue 14's targets checked against one run's JSON. Everything here
// is computed from the rungs as measured, so that an older run's page can be written again.
import { round } from './proc.js';

/**
 * The processes that do a scenario's work. The others are running too (the service idles through
 * peer-curl's rungs) and their CPU is measured, but it is not what that kind of call costs.
 */
export const PAYS = { limit: ['asterisk'], 'peer-curl': ['asterisk', 'api'], bare: ['asterisk', 'bare', 'api'], route: ['asterisk', 'service', 'api'] };

/** CPU ms per call of the processes that take part (cpuSecondsPer1000Calls is ms per call). */
export function callCpuMs(scenario, cpu) {
  const parts = PAYS[scenario].map((p) => cpu[p]);
  return parts.some((v) => v === null || v === undefined) ? null : round(parts.reduce((a, b) => a + b, 0), 3);
}

/**
 * Each scenario's rungs in the order they ran. Every scenario climbs the same list of rates and
 * leaves it early if at all, so the j-th rungs of two scenarios were offered the same rate, even
 * when a rate appears twice in the list (--rates 200,400,200,400).
 */
export function rungsInOrder(scenarios, names) {
  const lists = names.filter((k) => scenarios[k]?.rungs).map((k) => [k, scenarios[k].rungs]);
  const out = [];
  for (let j = 0; j < Math.max(0, ...lists.map(([, r]) => r.length)); j++) for (const [k, r] of lists) if (r[j]) out.push({ scenario: k, rung: r[j] });
  return out;
}

/** Route against peer-curl at each rate both ran: total CPU per call of the processes that work. */
export function routeOverPeerCurl(scenarios) {
  const route = scenarios.route?.rungs ?? [];
  const peer = scenarios['peer-curl']?.rungs ?? [];
  return route.flatMap((r, j) => {
    const p = peer[j];
    if (!p || p.offered !== r.offered) return [];
    const routeMs = callCpuMs('route', r.cpuSecondsPer1000Calls);
    const peerCurlMs = callCpuMs('peer-curl', p.cpuSecondsPer1000Calls);
    const ratio = routeMs !== null && peerCurlMs ? round(routeMs / peerCurlMs, 2) : null;
    return [{ offered: r.offered, routeMs, peerCurlMs, ratio, serviceMs: r.cpuSecondsPer1000Calls.service, clean: r.clean && p.clean }];
  });
}

/**
 * Route against the bare ARI client at each rate both ran: the service's CPU per call over the bare
 * client's (the same events in, the same two requests out, nothing else), and both latencies.
 */
export function routeOverBare(scenarios) {
  const route = scenarios.route?.rungs ?? [];
  const bare = scenarios.bare?.rungs ?? [];
  return route.flatMap((r, j) => {
    const b = bare[j];
    if (!b || b.offered !== r.offered) return [];
    const serviceMs = r.cpuSecondsPer1000Calls.service;
    const bareMs = b.cpuSecondsPer1000Calls.bare;
    const ratio = serviceMs !== null && serviceMs !== undefined && bareMs ? round(serviceMs / bareMs, 2) : null;
    return [{ offered: r.offered, serviceMs, bareMs, ratio, route: r.routing?.sinceStasisStartMs, bare: b.routing?.sinceStasisStartMs, clean: r.clean && b.clean }];
  });
}

/**
 * Routing latency comes from the service's histogram (src/calls/metrics.ts): a quantile is its
 * bucket's upper bound, and buckets grow by 2^(1/8). Met when the whole bucket is within the
 * target, not met when the whole bucket is past it, undecided (null) when it straddles it.
 */
const BUCKET_GROWTH = 2 ** (1 / 8);
const within = (target) => (ub) => (ub <= target ? true : ub / BUCKET_GROWTH >= target ? false : null);

/**
 * Issue 14's targets, each { target, measured, met } with met true, false or null (not measured in
 * this run). A rate that ran twice must meet the target both times.
 */
export function targets(result) {
  const s = result.scenarios;
  const route = s.route?.rungs ?? [];
  const at = (rate) => route.filter((g) => g.offered === rate);
  const rows = [];
  const add = (target, values, ok, unit, note) => {
    const known = values.filter((v) => v !== null && v !== undefined);
    const verdicts = known.map(ok);
    const met = verdicts.includes(false) ? false : verdicts.every((v) => v === true) ? true : null;
    if (!known.length) rows.push({ target, measured: 'not in this run', met: null });
    else rows.push({ target, measured: `${known.join(', ')}${unit ? ` ${unit}` : ''}${note ? ` (${note})` : ''}`, met, ...(met === null ? { undecided: true } : {}) });
  };
  const perRung = (rate) => (at(rate).length > 1 ? `${at(rate).length} rungs at ${rate}/s` : '');
  const notes = (...n) => n.filter(Boolean).join('; ');
  // the same figure of the bare ARI client in this run, where it ran: the floor under the target
  const bare = s.bare?.rungs ?? [];
  const bareSays = (rungs, label, value) => {
    const v = rungs.map(value).filter((x) => x !== null && x !== undefined);
    return v.length ? `the bare ARI client's ${label}: ${v.join(', ')} ms` : '';
  };
  const bareAt = (rate) => bare.filter((g) => g.offered === rate);
  for (const rate of [200, 400]) {
    add(`service CPU per routed call ≤ 0.4 ms at ${rate} calls/s`, at(rate).map((g) => g.cpuSecondsPer1000Calls.service), (v) => v <= 0.4, 'ms', notes(perRung(rate), bareSays(bareAt(rate), 'CPU', (g) => g.cpuSecondsPer1000Calls.bare)));
  }
  const pairs = routeOverPeerCurl(s);
  add("route's total CPU per call below peer-curl's at every rate", pairs.map((p) => p.ratio), (v) => v < 1, '', `route / peer-curl at ${pairs.map((p) => p.offered).join(', ')} calls/s`);
  // what the service itself adds, beside the target that counts the API's and Asterisk's answers too
  const own = (q) => {
    const v = at(200).map((g) => g.routing?.waitedMs?.own[q]).filter((x) => x !== null && x !== undefined);
    return v.length ? `the service's own ${q}: ${v.join(', ')} ms` : '';
  };
  for (const q of ['p99', 'p50']) {
    add(`routing ${q} ≤ ${q === 'p99' ? 2 : 1} ms at 200 calls/s`, at(200).map((g) => g.routing?.sinceStasisStartMs[q]), within(q === 'p99' ? 2 : 1), 'ms', notes(perRung(200), own(q), bareSays(bareAt(200), q, (g) => g.routing?.sinceStasisStartMs[q])));
  }
  const knee = s.route?.knee;
  const below = knee ? route.filter((g) => g.offered < knee) : [];
  // the slowest call is known to the latency histogram's bucket, not to the microsecond
  const bareBelow = knee ? bare.filter((g) => g.offered < knee) : [];
  add('no routed call over 20 ms below the route knee', below.map((g) => g.routing?.sinceStasisStartMs.max), within(20), 'ms', notes(`slowest per rung under ${knee} calls/s`, bareSays(bareBelow, 'slowest', (g) => g.routing?.sinceStasisStartMs.max)));
  add('service idle CPU ≤ 0.5 % of a core', [result.idle?.cpuPercentOfACore], (v) => v <= 0.5, '% of a core');

  const wholeRunPinned = result.settings?.pinned?.startsWith('Asterisk');
  rows.push(kneeRow(`route knee ≥ peer-curl knee, ${wholeRunPinned ? 'pinned (--pin)' : 'not pinned'}`, s));
  if (!wholeRunPinned) rows.push(kneeRow('route knee ≥ peer-curl knee, pinned (the pinned ladder)', result.pinnedLadder?.scenarios));

  const m = s.memory && !s.memory.error && !s.memory.pending ? s.memory : undefined;
  add('fresh service RSS ≤ 90 MB', [m?.fresh.rssMB], (v) => v <= 90, 'MB');
  add(`RSS after ${m ? m.run.calls.toLocaleString('en-US') : '100,000'} routed calls ≤ fresh + 20 MB`, [m ? round(m.end.rssMB - m.fresh.rssMB) : null], (v) => v <= 20, 'MB over fresh');
  const ownRun = m?.run.routing.waitedMs?.own.p99;
  add('routing p99 over the whole memory run ≤ 5 ms', [m?.run.routing.sinceStasisStartMs?.p99], within(5), 'ms', ownRun !== undefined ? `the service's own p99: ${ownRun} ms` : '');
  return rows;
}

function kneeRow(target, s) {
  if (!s?.route?.rungs || !s['peer-curl']?.rungs) return { target, measured: 'not in this run', met: null };
  // a scenario with no clean rung has no knee: it is below any knee the other one found
  const [rk, pk] = [s.route.knee, s['peer-curl'].knee];
  const top = s.route.kneeIsLadderTop ? ' (route at the top of the ladder)' : '';
  return { target, measured: `route ${rk ?? 'none'}, peer-curl ${pk ?? 'none'} calls/s${top}`, met: rk === null && pk === null ? null : (rk ?? -1) >= (pk ?? -1) };
}

/** The run's headline figures: knees and their ratios, latency at half the route knee, CPU per call. */
export function summary(result) {
  const s = result.scenarios;
  const knee = (k) => s[k]?.knee ?? null;
  const ratio = (a, b) => (a && b ? round(a / b, 2) : null);
  const out = {
    knees: { limit: knee('limit'), peerCurl: knee('peer-curl'), route: s.route?.pending ? 'pending' : knee('route') },
    routeOverLimit: ratio(knee('route'), knee('limit')),
    routeOverPeerCurl: ratio(knee('route'), knee('peer-curl')),
  };
  // the latency target is stated at half the knee: the rung nearest below it
  const routeRungs = s.route?.rungs ?? [];
  if (knee('route')) {
    const half = knee('route') / 2;
    const rung = [...routeRungs].filter((r) => r.offered <= half && r.clean).sort((a, b) => b.offered - a.offered)[0];
    if (rung) out.routingAtHalfKnee = { offered: rung.offered, sinceStasisStartMs: rung.routing.sinceStasisStartMs, inServiceMs: rung.routing.inServiceMs, waitedMs: rung.routing.waitedMs, serviceCpuMsPerCall: rung.cpuSecondsPer1000Calls.service };
  }
  // what the whole box pays per call: route's three processes against the dialplan's CURL() and
  // the API it asks (PAYS says which processes count)
  out.totalCpuPerCall = routeOverPeerCurl(s);
  return out;
}
