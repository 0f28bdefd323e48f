#!/usr/bin/env node
// npm run bench: what the service costs, against baselines measured in the same run on the same
// Asterisk. Every scenario is real SIP calls from SIPp into the local test PBX
// (docker/asterisk/up.sh), taking the same path - INVITE, 200 OK, ACK, Asterisk's BYE - so they
// differ only in how a call's destination is found:
//
//   limit      no lookup at all: the most calls/s this box's Asterisk takes (extension 700)
//   peer-curl  the dialplan asks the routing API itself: CURL() + JSON_DECODE + Goto (701)
//   route      the service's route step asks the same API and hands the call on (702)
//   queue-sms  callers wait in a queue and press #: time from the # to the SMS request
//   outbox     SMS/s the durable outbox delivers on SQLite and PostgreSQL, steady, across restarts,
//              and with two workers on one PostgreSQL outbox (bench/outbox.js)
//   memory     the service's RSS with 1,000 calls held in Stasis, and across 100,000 calls
//
// limit, peer-curl and route climb a ladder of offered rates together (each rate is run for every
// scenario before the next rate, so a noisy neighbour hits all three alike). A scenario leaves the
// ladder after two rungs in a row with a failed call or a retransmission. Its knee is the highest
// offered rate with neither. Results: bench/results/<date>.json and .md.
//
//   npm run bench                 the full run (under 20 minutes on 2 cores)
//   npm run bench -- --quick      a smaller run for development (say so when quoting it)
//   npm run bench -- --help       every option
import { fork, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuPerKiloCall, cpuSeconds, cpuSecondsPrecise, cpuSnapshot, round, rssBytes } from './lib/proc.js';
import { summary } from './lib/cost.js';
import { markdownReport } from './lib/report.js';
import { readmeBlock, replaceBlock } from './lib/readme.js';
import { infoSendTimes, injectionFile, percentile, runSipp } from './lib/sipp.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..');
const DIST = join(REPO, 'dist');
// from the build (npm run bench builds first), loaded by main(): --report-only needs none of it
let readAsteriskEnv, startAossms, DEFAULT_CREDENTIALS, histogramDelta, quantileMs, outboxBench, outboxSummary;
async function loadBuild() {
  ({ readAsteriskEnv } = await import(join(DIST, 'demo/local-pbx.js')));
  ({ startAossms, DEFAULT_CREDENTIALS } = await import(join(REPO, 'build/standins/aossms.js')));
  ({ histogramDelta, quantileMs } = await import(join(DIST, 'calls/metrics.js')));
  ({ outboxBench, outboxSummary } = await import('./outbox.js'));
}

/** The dialplan (docker/asterisk/conf/extensions_bench.conf) CURL()s this port. */
const API_PORT = 18099;
const EXTEN = { limit: 700, 'peer-curl': 701, route: 702, hold: 703, bare: 704, queue: 100 };
const LADDER_SCENARIOS = ['limit', 'peer-curl', 'bare', 'route'];
const ALL_SCENARIOS = [...LADDER_SCENARIOS, 'queue-sms', 'outbox', 'memory'];

const USAGE = `npm run bench -- [options]
  --quick                 small ladder, 4 s rungs, 5,000 calls in the memory run (for development)
  --scenarios LIST        some of ${ALL_SCENARIOS.join(',')} (default: all)
  --rates LIST            offered calls/s of the ladder (default 100,200,400,600,800,1000,1200,1600,2000)
  --rung-seconds N        length of each rung (default 10)
  --memory-calls N        calls through the route step in the memory run (default 100000), at half
                          the route knee or faster (up to the knee) if the time budget needs it
  --hold-calls N          calls held in Stasis at once in the memory run (default 1000)
  --queue-callers N       callers who press # in the queue-sms run (default 200)
  --outbox-messages N     messages per outbox run (default 3000)
  --budget-minutes N      stop climbing and shorten the memory run past this (default 26)
  --pin                   the whole run pinned: Asterisk and SIPp on CPU 0, the service and the API
                          stand-in on CPU 1 (as when the service runs on a host of its own); needs 2
                          CPUs and taskset
  --no-pinned-ladder      skip the second, pinned climb of the ladder (by default, on 2 CPUs or more,
                          limit, peer-curl and route climb it once as the kernel places them and once
                          pinned as with --pin, reported side by side)
  --warmup-seconds N      before each ladder, peer-curl, bare and route calls at 200/s for N s (default
                          10; 0: none), reported apart: the service, the bare client and the API
                          stand-in are Node, whose
                          compiler makes a fresh process's first thousand calls dearer than the rest
  --idle-seconds N        how long the service's CPU is measured with no calls (default 30)
  --no-provision          use the Asterisk already running in ASTX_DIR as it is (by default it is
                          restarted: run the bench on an Asterisk nobody else is using)
  --report-only FILE.json write FILE.md again from a run's JSON with today's report (no calls made)
  --readme FILE.json      write README.md's "latest run" block from that run's JSON (no calls made)
Environment: ASTX_DIR as for docker/asterisk/up.sh; BENCH_CPU_PROF=DIR writes V8 CPU profiles of the
service there (node --cpu-prof).`;

const t0 = Date.now();
const children = new Set();
let workDir;

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      rates: { type: 'string' },
      'rung-seconds': { type: 'string' },
      'memory-calls': { type: 'string' },
      'hold-calls': { type: 'string' },
      'queue-callers': { type: 'string' },
      'outbox-messages': { type: 'string' },
      'budget-minutes': { type: 'string' },
      'no-provision': { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      'no-pinned-ladder': { type: 'boolean', default: false },
      'idle-seconds': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'report-only': { type: 'string' },
      readme: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const q = values.quick;
  const num = (k, full, quick) => Number(values[k] ?? (q ? quick : full));
  const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const scenarios = values.scenarios ? list(values.scenarios) : ALL_SCENARIOS;
  for (const s of scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s} (known: ${ALL_SCENARIOS.join(', ')})`);
  return {
    quick: q,
    scenarios,
    rates: list(values.rates ?? (q ? '100,200,400,800' : '100,200,400,600,800,1000,1200,1600,2000')).map(Number),
    rungSeconds: num('rung-seconds', 10, 4),
    memoryCalls: num('memory-calls', 100_000, 5_000),
    holdCalls: num('hold-calls', 1000, 200),
    queueCallers: num('queue-callers', 200, 40),
    outboxMessages: num('outbox-messages', 3000, 1000),
    budgetS: num('budget-minutes', 26, 26) * 60,
    provision: !values['no-provision'],
    pin: values.pin,
    // the ladder again with the PBX and the service on a core each: not when the whole run is
    // pinned already, and not where there are not two cores to give
    pinnedLadder: !values.pin && !values['no-pinned-ladder'] && cpus().length >= 2,
    idleSeconds: num('idle-seconds', 30, 5),
    warmupSeconds: num('warmup-seconds', 10, 4),
    reportOnly: values['report-only'],
    readme: values.readme,
  };
}

async function main() {
  await loadBuild();
  if (opts.provision) provision();
  const env = readAsteriskEnv();
  const asteriskPid = currentAsteriskPid(env);
  pinned = opts.pin;
  if (pinned) pin(asteriskPid, PIN.pbx);
  workDir = mkdtempSync(join(tmpdir(), 'call-actions-bench-'));
  log(`work folder ${workDir}; Asterisk pid ${asteriskPid}; ${opts.quick ? 'QUICK run' : 'full run'}`);
  writeFileSync(join(workDir, 'callers.csv'), injectionFile(10_000));

  const result = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    quick: opts.quick,
    machine: machine(env),
    settings: {
      rungSeconds: opts.rungSeconds,
      warmup: opts.warmupSeconds > 0 ? { seconds: opts.warmupSeconds, rate: WARMUP_RATE } : null,
      rates: opts.rates,
      service: 'ARI only (no AMI, no hooks), log level info to a file, SQLite store',
      pinned: opts.pin ? PINNED : 'no (the kernel places every process)',
      asterisk: 'verbose 0, http.conf sessionlimit 1000, ari.conf defaults',
    },
    scenarios: {},
    notes: [],
  };
  if (opts.quick) result.notes.push('QUICK run: shorter rungs, smaller ladder and memory run; figures are indicative only.');
  if (opts.memoryCalls < 100_000 && opts.scenarios.includes('memory')) result.notes.push(`memory run scaled down: ${opts.memoryCalls} calls instead of 100,000`);
  const api = await startApi();
  const bare = opts.scenarios.includes('bare') ? await startBare(env) : undefined;
  const sms = await startAossms();
  const routeAvailable = existsSync(join(DIST, 'routing/route-step.js'));
  let service;
  try {
    const wantLadder = LADDER_SCENARIOS.filter((s) => opts.scenarios.includes(s));
    const wantService = wantLadder.includes('route') || opts.scenarios.includes('queue-sms');
    if (wantService) service = await startBenchService('ladder', { sms, route: routeAvailable });
    const pids = { asterisk: asteriskPid, service: service?.pid, api: api.pid, bare: bare?.pid };
    if (service) result.idle = await idleCost(service);

    if (wantLadder.length) {
      let pending;
      if (wantLadder.includes('route')) pending = routeAvailable ? await probeRoute(service) : 'the route step is not in this build (src/routing/route-step.ts)';
      if (pending) {
        log(`route: pending - ${pending}`);
        result.scenarios.route = { pending };
      }
      const climbing = wantLadder.filter((s) => !(s === 'route' && pending));
      Object.assign(result.scenarios, await ladder(climbing, { env, pids, service, bare, untilS: opts.budgetS * (opts.pinnedLadder ? 0.35 : 0.6) }));
    }
    if (opts.scenarios.includes('queue-sms')) result.scenarios['queue-sms'] = await attempt('queue-sms', () => queueSms({ env, sms, service }));
    if (service) await service.stop();
    service = undefined;
    if (opts.pinnedLadder && wantLadder.length) result.pinnedLadder = await attempt('pinned ladder', () => pinnedLadder(wantLadder, { env, asteriskPid, api, bare, sms, routeAvailable }));

    if (opts.scenarios.includes('outbox')) result.scenarios.outbox = await attempt('outbox', () => outbox());
    if (opts.scenarios.includes('memory')) {
      if (!routeAvailable) result.scenarios.memory = { pending: 'needs the route step' };
      else {
        const knee = result.scenarios.route?.knee ?? result.scenarios.limit?.knee;
        result.scenarios.memory = await attempt('memory', () => memory({ env, sms, api, asteriskPid, knee }));
      }
    }
  } finally {
    await service?.stop();
    await sms.close();
    api.child.kill('SIGTERM');
    bare?.child.kill('SIGTERM');
  }
  result.summary = summary(result);
  result.durationS = round((Date.now() - t0) / 1000);
  if (result.durationS > opts.budgetS + 60) result.notes.push(`the run took ${result.durationS} s, over its ${opts.budgetS / 60}-minute budget`);

  const stamp = result.date.slice(0, 19).replace(/:/g, '-');
  const base = join(HERE, 'results', opts.quick ? `${stamp}-quick` : stamp);
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
  const md = markdownReport(result);
  writeFileSync(`${base}.md`, md);
  process.stdout.write(md);
  log(`written ${base}.json and .md in ${result.durationS} s`);
  // The ladder is meant to saturate, so its failures are expected; a failure elsewhere is not, and
  // the service's and sipp's logs (a few hundred MB after a full run) are kept to explain it.
  const s = result.scenarios;
  const unexpected = ['queue-sms', 'outbox', 'memory'].some((k) => s[k]?.error || s[k]?.failed || s[k]?.run?.failed);
  if (unexpected) log(`logs of the service and of sipp kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
}

/**
 * The page of an earlier run, written again with today's tables. The summary is computed again
 * from the rungs too (older JSON lacks parts of it); the JSON itself is left as it was measured.
 */
function reportOnly(file) {
  const result = JSON.parse(readFileSync(file, 'utf8'));
  result.summary = summary(result);
  result.notes = [...(result.notes ?? []), `page written again on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC from the run's JSON (\`--report-only\`): the figures are the run's, the tables are those of bench/lib/report.js on that day.`];
  const md = markdownReport(result);
  writeFileSync(file.replace(/\.json$/, '') + '.md', md);
  process.stdout.write(md);
}

/** README.md's "latest run" block from one run's JSON (bench/lib/readme.js). */
function writeReadme(file) {
  const rel = relative(REPO, resolve(file));
  if (!rel.startsWith('bench/results/')) throw new Error(`--readme takes a run's JSON in bench/results/, not ${file}`);
  const result = JSON.parse(readFileSync(file, 'utf8'));
  const readme = join(REPO, 'README.md');
  writeFileSync(readme, replaceBlock(readFileSync(readme, 'utf8'), readmeBlock(result, rel)));
  log(`README.md: latest run block written from ${rel}`);
}

/** A scenario that throws is reported as such; the others still run and the report is written. */
async function attempt(name, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${name} failed: ${e.stack ?? e}`);
    return { error: String(e.message ?? e) };
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up

/**
 * A freshly started Asterisk for every run: one that took earlier load keeps memory and queues
 * that would weigh on this run's baselines (gotcha 16 of the PBX notes: 800 MB after bursts).
 */
function provision() {
  log('provisioning the local Asterisk: docker/asterisk/down.sh, then up.sh with ASTX_VERBOSE=0');
  const env = { ...process.env, ASTX_VERBOSE: '0' };
  const down = spawnSync('bash', [join(REPO, 'docker/asterisk/down.sh')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (down.status !== 0) throw new Error(`docker/asterisk/down.sh failed (exit ${down.status})`);
  const up = spawnSync('bash', [join(REPO, 'docker/asterisk/up.sh')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (up.status !== 0) throw new Error(`docker/asterisk/up.sh failed (exit ${up.status})`);
}

/** asterisk.env names the pid of the last start; a restart since then would make it stale. */
function currentAsteriskPid(env) {
  const file = join(env.root, 'run/asterisk/asterisk.pid');
  const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : env.pid;
  if (!pid || cpuSeconds(pid) === undefined) throw new Error(`no running Asterisk (pid ${pid}); run without --no-provision`);
  return pid;
}

function machine(env) {
  const version = spawnSync('chroot', [env.root, '/usr/sbin/asterisk', '-V'], { encoding: 'utf8' }).stdout?.trim();
  const sipp = spawnSync('sipp', ['-v'], { encoding: 'utf8' }).stdout?.match(/SIPp v[^\s,]+/)?.[0];
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? '',
    memoryGiB: round(totalmem() / 2 ** 30),
    loadavgAtStart: loadavg().map((l) => round(l, 2)),
    asterisk: version,
    sipp,
  };
}

async function startApi() {
  const child = fork(join(HERE, 'lib/instant-api.js'), [String(API_PORT)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const m = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the routing API stand-in exited (${code})`)));
  });
  if (m.error) throw new Error(`the routing API stand-in cannot listen on 127.0.0.1:${API_PORT}: ${m.error}`);
  if (pinned) pin(child.pid, PIN.service);
  return { child, pid: child.pid, url: `http://127.0.0.1:${API_PORT}` };
}

/** The bare ARI client (bench/lib/bare-ari.js), connected to Asterisk as application bench-bare. */
async function startBare(env) {
  const child = fork(join(HERE, 'lib/bare-ari.js'), [env.ariUrl, 'bench-bare', String(API_PORT)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ARI_USER: env.ariUser, ARI_PASSWORD: env.ariPass },
  });
  children.add(child);
  const m = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the bare ARI client exited (${code})`)));
  });
  if (m.error) throw new Error(`the bare ARI client could not start: ${m.error}`);
  if (pinned) pin(child.pid, PIN.service);
  const latencies = () =>
    new Promise((resolve) => {
      child.once('message', (r) => resolve(r.latencies ?? []));
      child.send('latencies');
    });
  return { child, pid: child.pid, latencies };
}

let nextServicePort = 18_190;

/** The service as users run it: `node dist/cli.js start --config FILE`, its own process. */
async function startBenchService(name, { sms, route, ami = false }) {
  const dir = join(workDir, `service-${name}`);
  mkdirSync(dir, { recursive: true });
  const port = nextServicePort++;
  const env = readAsteriskEnv();
  const config = `asterisk:
  ari: { url: "${env.ariUrl}", user: "\${ARI_USER}", password: "\${ARI_PASSWORD}", app: call-actions, timeout: 3s }
${ami ? `  ami: { host: ${env.amiHost}, port: ${env.amiPort}, user: "\${AMI_USER}", secret: "\${AMI_SECRET}" }
` : ''}store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
log: { level: info }
tts: { cacheDir: ${join(dir, 'tts')} }
sms:
  defaultCountry: JP
  providers:
    aossms:
      kind: http
      url: ${sms.endpoint}
      encoding: form
      body: { token: "${DEFAULT_CREDENTIALS.token}", clientId: "${DEFAULT_CREDENTIALS.clientId}", smsCode: "${DEFAULT_CREDENTIALS.smsCode}", message: "{message}", phoneNumber: "{to}" }
      timeout: 3s
stages:
  queue-exit:
    - sms: { description: "Queue # SMS", provider: aossms, to: [caller], text: "Book a call back: https://example.com/cb", oncePerCall: true }
    - hangup: {}
${route ? `  bench-route:
    - route: { url: "http://127.0.0.1:${API_PORT}/route", encoding: query, speak: false, timeout: 2s }
  bench-hold:
    - gather: { timeout: 300s, retries: 0 }
destinations:
  extension: { context: bench-dest, exten: "{name}" }
` : ''}`;
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, config);
  const out = openSync(join(dir, 'service.log'), 'a');
  const execArgv = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...execArgv, join(DIST, 'cli.js'), 'start', '--config', configFile], {
    env: { ...process.env, ARI_USER: env.ariUser, ARI_PASSWORD: env.ariPass, AMI_USER: env.amiUser, AMI_SECRET: env.amiPass },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  children.add(child);
  if (pinned) pin(child.pid, PIN.service);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}); see ${join(dir, 'service.log')}:\n${tail(join(dir, 'service.log'))}`);
    const h = await fetch(`${url}/health`).then((r) => r.json(), () => undefined);
    if (h?.ok) break;
    if (Date.now() > deadline) throw new Error(`the service did not become healthy; see ${join(dir, 'service.log')}`);
    await sleep(100);
  }
  return {
    pid: child.pid,
    url,
    dir,
    metrics: () => fetch(`${url}/stats`).then((r) => r.json()),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(10_000)]);
      }
      children.delete(child);
    },
  };
}

/** One call through extension 702 before the ladder: does this build route at all? */
async function probeRoute(service) {
  const before = (await service.metrics()).stages['bench-route'];
  const r = await runSipp({ ...sippBase('probe'), service: EXTEN.route, rate: 1, calls: 1, timeoutS: 15 });
  await sleep(200);
  const after = (await service.metrics()).stages['bench-route'];
  const left = (after?.left ?? 0) - (before?.left ?? 0);
  if (r.successful === 1 && left === 1) return undefined;
  return `a probe call did not route (sipp: ${r.successful} ok, ${r.failed} failed; service: ${JSON.stringify(after ?? null)}); see ${service.dir}/service.log`;
}

function sippBase(name) {
  return {
    cpu: pinned ? PIN.pbx : undefined,
    scenario: join(HERE, 'sipp/call.xml'),
    injection: join(workDir, 'callers.csv'),
    dir: join(workDir, 'sipp', `${name}-${Date.now()}`),
  };
}

// ---------------------------------------------------------------------------------------------
// limit, peer-curl, route: the ladder

/** The rate of the warm-up rungs: below every knee measured on this box (peer-curl's is 200). */
const WARMUP_RATE = 200;

async function ladder(scenarios, { env, pids, service, bare, untilS }) {
  const state = Object.fromEntries(scenarios.map((s) => [s, { rungs: [], dirtyInARow: 0, done: false, stopped: undefined }]));
  // A fresh Node process runs its code interpreted until V8 has seen enough of it to compile it:
  // alternating runs at 100 and 200 calls/s cost the service 2.6-2.9 and 1.5-1.8 ms per call when
  // they came first, 1.7-2.0 and 1.35-1.45 after a rung at 400. A service in use has long since
  // compiled; the warm-up's own figures are kept, so the fresh cost is still in the report.
  const warmup = {};
  if (opts.warmupSeconds > 0) {
    for (const s of scenarios.filter((k) => k !== 'limit')) {
      const rung = await runRung(s, WARMUP_RATE, { env, pids, service, bare }, opts.warmupSeconds);
      log(`${s} warm-up @ ${WARMUP_RATE}/s: ${describeRung(rung)}`);
      if (!rung.clean) await settled(pids.asterisk);
      warmup[s] = rung;
    }
  }
  for (const rate of opts.rates) {
    for (const s of scenarios) {
      const st = state[s];
      if (st.done) continue;
      // a rung takes its seconds plus start and drain; the memory, queue and outbox runs still follow
      if (elapsedS() + opts.rungSeconds + 5 > untilS) {
        st.done = true;
        st.stopped = `time budget: stopped before ${rate} calls/s`;
        continue;
      }
      const rung = await runRung(s, rate, { env, pids, service, bare });
      st.rungs.push(rung);
      log(`${s} @ ${rate}/s: ${describeRung(rung)}`);
      st.dirtyInARow = rung.clean ? 0 : st.dirtyInARow + 1;
      // a saturated Asterisk still works off queued events after its last channel is gone; the
      // next rung (another scenario's) must not pay for this one
      if (!rung.clean) await settled(pids.asterisk);
      if (st.dirtyInARow >= 2) {
        st.done = true;
        st.stopped = 'two rungs in a row with failures or retransmissions';
      }
    }
  }
  const out = {};
  for (const s of scenarios) {
    const { rungs, stopped } = state[s];
    const clean = rungs.filter((r) => r.clean);
    const knee = clean.length ? Math.max(...clean.map((r) => r.offered)) : null;
    out[s] = { knee, kneeIsLadderTop: knee === opts.rates[opts.rates.length - 1], stopped: stopped ?? 'top of the ladder', rungs, ...(warmup[s] ? { warmup: warmup[s] } : {}) };
  }
  return out;
}

async function runRung(scenario, rate, { env, pids, service, bare }, seconds = opts.rungSeconds) {
  const calls = Math.round(rate * seconds);
  const m0 = scenario === 'route' ? await service.metrics() : undefined;
  if (scenario === 'bare') await bare.latencies(); // what it kept before this rung is not this rung's
  const cpu0 = cpuSnapshot(pids);
  const r = await runSipp({ ...sippBase(`${scenario}-${rate}`), service: EXTEN[scenario], rate, calls, timeoutS: seconds + 20 });
  // calls still being torn down belong to this rung's cost
  await drained(env);
  const cpu1 = cpuSnapshot(pids);
  const rung = {
    offered: rate,
    calls,
    created: r.created,
    successful: r.successful,
    failed: r.failed + Math.max(0, calls - r.created),
    retransmissions: r.retransmissions,
    timeouts: r.timeouts,
    unexpected: r.unexpected,
    achieved: r.elapsedS > 0 ? round(r.successful / r.elapsedS) : 0,
    sippElapsedS: round(r.elapsedS, 2),
    sipResponseMs: responseTimes(r.responseTimesMs),
    cpuSecondsPer1000Calls: cpuPerKiloCall(cpu0, cpu1, r.created),
  };
  if (m0) {
    const m1 = await service.metrics();
    // a route that fell back ends its SIP call with an error, which sipp already counts as failed
    rung.routing = routingLatency(m0, m1, 'bench-route');
    rung.eventLoopDelayMs = loopDelay(m0, m1);
  }
  if (scenario === 'bare') {
    const l = (await bare.latencies()).sort((a, b) => a - b);
    rung.routing = { left: l.length, sinceStasisStartMs: { p50: percentile(l, 0.5), p99: percentile(l, 0.99), max: l.length ? l[l.length - 1] : null, mean: l.length ? round(l.reduce((a, b) => a + b, 0) / l.length, 2) : null } };
  }
  rung.clean = rung.failed === 0 && rung.retransmissions === 0 && rung.successful === calls;
  return rung;
}

function responseTimes(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s.length ? s[s.length - 1] : null, samples: s.length };
}

/** From two /stats snapshots: the stage's visits in between and its latency quantiles. */
function routingLatency(m0, m1, stage) {
  const a = m0.stages[stage];
  const b = m1.stages[stage];
  if (!b) return { entered: 0 };
  const since = histogramDelta(b.sinceStasisStart, a?.sinceStasisStart);
  const inService = histogramDelta(b.inService, a?.inService);
  const d = (k) => b[k] - (a?.[k] ?? 0);
  return {
    entered: d('entered'),
    left: d('left'),
    fallback: d('fallback'),
    gone: d('gone'),
    // Asterisk's StasisStart timestamp → the channel out of Stasis: what a caller waits for
    sinceStasisStartMs: { p50: quantileMs(since, 0.5) ?? null, p99: quantileMs(since, 0.99) ?? null, max: quantileMs(since, 1) ?? null, mean: since.count ? round(since.sumMs / since.count, 2) : null },
    // from the event's arrival in the service to Asterisk's answer to the hand-back
    inServiceMs: { p50: quantileMs(inService, 0.5) ?? null, p99: quantileMs(inService, 0.99) ?? null, mean: inService.count ? round(inService.sumMs / inService.count, 2) : null },
    // that time by who was waited on: the API, Asterisk's answers, and the service's own (a service before the split has none)
    ...(b.own ? { waitedMs: Object.fromEntries(['api', 'asterisk', 'own'].map((k) => [k, quantiles(histogramDelta(b[k], a?.[k]))])) } : {}),
  };
}

function quantiles(h) {
  return { p50: quantileMs(h, 0.5) ?? null, p99: quantileMs(h, 0.99) ?? null, max: quantileMs(h, 1) ?? null };
}

/** How late the service's event loop ran its timers between two /metrics snapshots. */
function loopDelay(m0, m1) {
  const a = m0.process.eventLoopDelay;
  const b = m1.process.eventLoopDelay;
  if (!b) return null;
  const d = histogramDelta(b, a);
  return { p50: quantileMs(d, 0.5) ?? null, p99: quantileMs(d, 0.99) ?? null, max: quantileMs(d, 1) ?? null, samples: d.count };
}

/** The service's CPU with no call at all: WebSocket pings, timers, sweeps. */
async function idleCost(service) {
  // after start-up's compiling and collecting have settled: V8's memory reducer runs one full
  // collection some seconds after allocation slows (about 100 ms of CPU, 7-9 s after start in a CPU
  // profile of the service), a one-off of start-up that no idle hour repeats
  await sleep(15_000);
  const c0 = cpuSecondsPrecise(service.pid);
  const t = Date.now();
  await sleep(opts.idleSeconds * 1000);
  const c1 = cpuSecondsPrecise(service.pid);
  const seconds = (Date.now() - t) / 1000;
  const out = { seconds: round(seconds), cpuPercentOfACore: round(((c1 - c0) / seconds) * 100, 2) };
  log(`idle: the service used ${out.cpuPercentOfACore} % of a core over ${out.seconds} s with no calls`);
  return out;
}

/** Until Asterisk has no channel left (calls of a saturated rung may still be ending). */
async function drained(env, timeoutMs = 30_000) {
  const auth = 'Basic ' + Buffer.from(`${env.ariUser}:${env.ariPass}`).toString('base64');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const list = await fetch(`${env.ariUrl}/ari/channels`, { headers: { authorization: auth } }).then((r) => r.json(), () => undefined);
    if (Array.isArray(list) && list.length === 0) return true;
    await sleep(250);
  }
  log('channels still up after 30 s; going on');
  return false;
}

/** Until Asterisk uses under a tenth of a core for a whole second (at most 30 s). */
async function settled(pid, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = cpuSeconds(pid);
  while (Date.now() < deadline) {
    await sleep(1000);
    const now = cpuSeconds(pid);
    if (now === undefined || last === undefined || now - last < 0.1) return;
    last = now;
  }
  log('Asterisk still busy 30 s after a saturated rung; going on');
}

function describeRung(r) {
  const routing = r.routing?.inServiceMs ? `, routing p50/p99 ${r.routing.sinceStasisStartMs.p50}/${r.routing.sinceStasisStartMs.p99} ms` : '';
  return `${r.achieved}/s achieved, ${r.failed} failed, ${r.retransmissions} retrans, SIP p50/p99 ${r.sipResponseMs.p50}/${r.sipResponseMs.p99} ms${routing}, CPU s/1k: ${Object.entries(r.cpuSecondsPer1000Calls).map(([k, v]) => `${k} ${v}`).join(', ')}${r.clean ? '' : ' [DIRTY]'}`;
}

// ---------------------------------------------------------------------------------------------
// queue-sms

async function queueSms({ env, sms, service }) {
  const n = opts.queueCallers;
  const rate = 20;
  const first = sms.requests.length;
  const callers = join(workDir, 'queue-callers.csv');
  writeFileSync(callers, injectionFile(n, '+81902'));
  const cpu0 = cpuSnapshot({ service: service.pid });
  const dir = join(workDir, 'sipp', `queue-sms-${Date.now()}`);
  // -d: how long each caller waits in the queue before pressing #
  const r = await runSipp({ scenario: join(HERE, 'sipp/queue_pound.xml'), injection: callers, dir, service: EXTEN.queue, rate, calls: n, pauseMs: 1500, traceMsg: true, timeoutS: Math.ceil(n / rate) + 30 });
  // the last SMS may trail the caller's BYE
  const deadline = Date.now() + 10_000;
  while (sms.requests.length - first < r.successful && Date.now() < deadline) await sleep(50);
  await drained(env);
  const cpu1 = cpuSnapshot({ service: service.pid });
  const sent = infoSendTimes(dir);
  const latencies = [];
  let unmatched = 0;
  for (const req of sms.requests.slice(first)) {
    const at = sent.get(req.fields.phoneNumber);
    if (at === undefined) unmatched++;
    else latencies.push(req.at - at);
  }
  latencies.sort((a, b) => a - b);
  const out = {
    callers: n,
    offered: rate,
    successful: r.successful,
    failed: r.failed,
    retransmissions: r.retransmissions,
    smsRequests: sms.requests.length - first,
    unmatched,
    poundToSmsMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.length ? latencies[latencies.length - 1] : null, samples: latencies.length },
    cpuSecondsPer1000Calls: cpuPerKiloCall(cpu0, cpu1, r.created),
  };
  log(`queue-sms: ${out.successful}/${n} calls ok, ${out.smsRequests} SMS requests; # → SMS p50/p99 ${out.poundToSmsMs.p50}/${out.poundToSmsMs.p99} ms`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// outbox

async function outbox() {
  const levels = [16];
  log(`outbox: ${opts.outboxMessages} messages at concurrency ${levels.join(',')}, on SQLite and PostgreSQL: steady / graceful restart / crash; on PostgreSQL two workers, and a takeover`);
  const r = await outboxBench({ messages: opts.outboxMessages, levels, rounds: 1 });
  return outboxSummary(r, r.runs[0]);
}

// ---------------------------------------------------------------------------------------------
// memory

async function memory({ env, sms, asteriskPid, knee }) {
  // with AMI, as examples/config.yaml: without it the call-event tracker never sees a call end and
  // keeps every call for its 4-hour idle limit, which this run would show as growth
  const service = await startBenchService('memory', { sms, route: true, ami: true });
  try {
    const mem = async () => {
      const m = await service.metrics();
      const p = m.process;
      const rss = rssBytes(service.pid);
      return { rssMB: mb(rss), heapUsedMB: mb(p.heapUsedBytes), parts: memoryParts(rss, p), activeCalls: m.calls, stageVisits: Object.values(m.stages).reduce((n, s) => n + s.entered, 0) };
    };
    await sleep(2000);
    const fresh = await mem();
    log(`memory: fresh service RSS ${fresh.rssMB} MB`);

    // 1. hold: calls arrive over 5 s and stay until every one of them is in
    const hold = opts.holdCalls;
    const holdRate = Math.max(1, Math.round(hold / 5));
    const holdMs = 5_000 + 10_000;
    const holdRun = runSipp({
      scenario: join(HERE, 'sipp/hold.xml'),
      injection: join(workDir, 'callers.csv'),
      dir: join(workDir, 'sipp', `hold-${Date.now()}`),
      service: EXTEN.hold,
      rate: holdRate,
      calls: hold,
      limit: hold + 100,
      pauseMs: holdMs,
      timeoutS: 60,
    });
    let held = fresh;
    let peakActive = 0;
    const holdDeadline = Date.now() + 14_000;
    while (Date.now() < holdDeadline) {
      await sleep(500);
      const m = await mem();
      peakActive = Math.max(peakActive, m.activeCalls);
      if (m.activeCalls >= held.activeCalls) held = { ...m, asteriskRssMB: mb(rssBytes(asteriskPid)) };
      if (m.activeCalls >= hold) break;
    }
    const hr = await holdRun;
    await drained(env);
    const afterHold = await mem();
    log(`memory: ${held.activeCalls} calls held in Stasis: RSS ${held.rssMB} MB (heap ${held.heapUsedMB} MB); after they left ${afterHold.rssMB} MB`);

    // 2. many calls through the route step, at the route knee, RSS sampled as they go
    // As slowly as the time left allows, from half the route knee up to the knee itself: the run
    // lasts minutes where the knee's rung lasted ten seconds, and what should grow here is memory,
    // not a backlog. Only when even the knee cannot fit the calls in is the run shortened.
    const routeKnee = knee ?? 200;
    let calls = opts.memoryCalls;
    const leftS = opts.budgetS - elapsedS() - 15;
    const rate = Math.min(routeKnee, Math.max(Math.floor(routeKnee / 2), Math.ceil(calls / Math.max(1, leftS))));
    let shortened;
    if (calls / rate > leftS) {
      const fit = Math.max(rate * 10, Math.floor((leftS * rate) / 1000) * 1000);
      shortened = `${calls} calls at ${rate}/s would not fit the time budget: ran ${fit}`;
      calls = fit;
    }
    log(`memory: ${calls} calls through the route step at ${rate}/s`);
    const m0 = await service.metrics();
    const samples = [];
    const sipp = runSipp({ ...sippBase('memory'), service: EXTEN.route, rate, calls, timeoutS: Math.ceil(calls / rate) + 30 });
    let finished = false;
    void sipp.finally(() => (finished = true));
    const start = Date.now();
    while (!finished) {
      await sleep(1000);
      const m = await mem().catch(() => undefined);
      if (m) samples.push({ s: round((Date.now() - start) / 1000), callsSoFar: m.stageVisits - m0Visits(m0), rssMB: m.rssMB, heapUsedMB: m.heapUsedMB });
    }
    const r = await sipp;
    await drained(env);
    await sleep(3000);
    const end = await mem();
    const m1 = await service.metrics();
    // V8 collects lazily, so RSS climbs to a plateau first: growth is the plateau's change
    // from the middle of the run to its end, and the first tenth is shown for the climb
    const tenth = samples.find((s) => s.callsSoFar >= calls / 10) ?? samples[0];
    const half = samples.find((s) => s.callsSoFar >= calls / 2) ?? samples[samples.length - 1];
    const out = {
      fresh: { rssMB: fresh.rssMB, heapUsedMB: fresh.heapUsedMB },
      breakdown: { fresh: breakdown(fresh), end: breakdown(end) },
      held: { calls: held.activeCalls, target: hold, rssMB: held.rssMB, heapUsedMB: held.heapUsedMB, asteriskRssMB: held.asteriskRssMB, sippFailed: hr.failed },
      afterHold: { rssMB: afterHold.rssMB, heapUsedMB: afterHold.heapUsedMB },
      run: {
        calls,
        rate,
        ...(shortened ? { shortened } : {}),
        successful: r.successful,
        failed: r.failed,
        retransmissions: r.retransmissions,
        routing: routingLatency(m0, m1, 'bench-route'),
        // what stalled the loop over the run: its timers' lateness, and V8's pauses by kind
        loopDelayMs: loopDelay(m0, m1),
        gcPausesMs: gcPauses(m0, m1),
      },
      afterTenth: tenth ? { callsSoFar: tenth.callsSoFar, rssMB: tenth.rssMB, heapUsedMB: tenth.heapUsedMB } : null,
      afterHalf: half ? { callsSoFar: half.callsSoFar, rssMB: half.rssMB, heapUsedMB: half.heapUsedMB } : null,
      end: { rssMB: end.rssMB, heapUsedMB: end.heapUsedMB, activeCalls: end.activeCalls },
      growthMB: half ? { rss: round(end.rssMB - half.rssMB), heapUsed: round(end.heapUsedMB - half.heapUsedMB) } : null,
      // the lowest heap seen in each half is close to what survives a collection: a leak raises it
      heapFloorMB: heapFloors(samples, calls),
      samples,
    };
    log(`memory: after ${calls} calls RSS ${end.rssMB} MB (heap ${end.heapUsedMB} MB); after the first tenth ${tenth?.rssMB} MB, half ${half?.rssMB} MB`);
    return out;
  } finally {
    await service.stop();
  }
}

function breakdown(m) {
  return { rssMB: m.rssMB, heapUsedMB: m.heapUsedMB, ...m.parts };
}

/**
 * Where the RSS goes (the service's /stats process.memory): the kernel's split (anonymous,
 * file-backed: node's own code and the libraries'), V8's heap by space as resident, V8's own
 * malloc, memory bound to JS objects outside the heap, SQLite's page cache (its bound), and the
 * anonymous rest. A service without process.memory (older builds): heap total, external, rest.
 */
function memoryParts(rss, p) {
  const m = p.memory;
  if (!m) return { heapTotalMB: mb(p.heapTotalBytes), externalMB: mb(p.externalBytes), arrayBuffersMB: mb(p.arrayBuffersBytes), otherNativeMB: mb(rss - p.heapTotalBytes - p.externalBytes) };
  return {
    anonMB: mb(m.rss?.anonBytes),
    fileMB: mb(m.rss?.fileBytes),
    heapNewMB: mb(m.heap.new.residentBytes),
    heapOldMB: mb(m.heap.old.residentBytes),
    heapCodeMB: mb(m.heap.code.residentBytes + m.heap.other.residentBytes),
    v8MallocMB: mb(m.v8MallocBytes),
    externalMB: mb(m.externalBytes),
    arrayBuffersMB: mb(m.arrayBuffersBytes),
    sqliteCacheMB: m.sqlitePageCache ? mb(m.sqlitePageCache.boundBytes) : null,
    otherAnonMB: mb(m.otherAnonBytes),
  };
}

/** V8's pauses between two /stats snapshots, by kind of collection. */
function gcPauses(m0, m1) {
  const a = m0.process.gcPauses;
  const b = m1.process.gcPauses;
  if (!b) return null;
  const out = {};
  for (const [kind, h] of Object.entries(b)) {
    const d = histogramDelta(h, a?.[kind]);
    if (d.count) out[kind] = { count: d.count, totalMs: d.sumMs, p99: quantileMs(d, 0.99) ?? null, max: quantileMs(d, 1) ?? null };
  }
  return out;
}

function heapFloors(samples, calls) {
  const floor = (list) => (list.length ? Math.min(...list.map((x) => x.heapUsedMB)) : null);
  const first = floor(samples.filter((x) => x.callsSoFar <= calls / 2));
  const second = floor(samples.filter((x) => x.callsSoFar > calls / 2));
  return { firstHalf: first, secondHalf: second, growth: first !== null && second !== null ? round(second - first) : null };
}

function m0Visits(m) {
  return Object.values(m.stages).reduce((n, s) => n + s.entered, 0);
}

// ---------------------------------------------------------------------------------------------

/** Which CPU each side gets with --pin and in the pinned ladder. */
const PIN = { pbx: 0, service: 1 };
const PINNED = `Asterisk and SIPp on CPU ${PIN.pbx}, the service and the API stand-in on CPU ${PIN.service}`;
/** Whether processes started now are pinned: the whole run with --pin, or the pinned ladder. */
let pinned = false;

/**
 * The ladder once more, as when the service runs on a host of its own: Asterisk and SIPp on one
 * core, the service and the API stand-in on the other, so that neither side's CPU is the other's.
 * A service of its own (started pinned); afterwards every process may use every core again, as the
 * scenarios that follow were measured.
 */
async function pinnedLadder(scenarios, { env, asteriskPid, api, bare, sms, routeAvailable }) {
  pinned = true;
  pin(asteriskPid, PIN.pbx);
  pin(api.pid, PIN.service);
  if (bare) pin(bare.pid, PIN.service);
  let service;
  try {
    const wantRoute = scenarios.includes('route');
    if (wantRoute && routeAvailable) service = await startBenchService('ladder-pinned', { sms, route: true });
    const pending = !wantRoute ? undefined : service ? await probeRoute(service) : 'the route step is not in this build';
    const climbing = scenarios.filter((s) => !(s === 'route' && pending));
    const pids = { asterisk: asteriskPid, service: service?.pid, api: api.pid, bare: bare?.pid };
    const out = { settings: { pinned: PINNED }, scenarios: await ladder(climbing, { env, pids, service, bare, untilS: opts.budgetS * 0.65 }) };
    if (pending) out.scenarios.route = { pending };
    return out;
  } finally {
    await service?.stop();
    pinned = false;
    const all = `0-${cpus().length - 1}`;
    pin(asteriskPid, all);
    pin(api.pid, all);
    if (bare) pin(bare.pid, all);
  }
}

/** Every thread of a running process onto one CPU. */
function pin(pid, cpu) {
  const r = spawnSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset could not pin pid ${pid} to CPU ${cpu}: ${r.stderr || r.error}`);
}

function elapsedS() {
  return (Date.now() - t0) / 1000;
}

function mb(bytes) {
  return bytes === undefined ? null : round(bytes / 2 ** 20);
}

function tail(file) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function log(line) {
  process.stderr.write(`[bench ${Math.round(elapsedS())}s] ${line}\n`);
}

// last, so that every module-level binding above is initialised when main() runs
const opts = options();
try {
  if (opts.reportOnly) reportOnly(opts.reportOnly);
  else if (opts.readme) writeReadme(opts.readme);
  else await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
}
