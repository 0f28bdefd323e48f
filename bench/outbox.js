#!/usr/bin/env node
// How many SMS per second the durable outbox delivers to an instant local provider, against a
// baseline measured in the same run: the same number of raw undici POSTs of the same form, at the
// same concurrency, to the same stand-in. The ratio is the price of durability (one fsync'd SQLite
// commit to claim each message and one to settle it) plus the outbox's own bookkeeping.
//
//   npm run build && node bench/outbox.js [--messages 5000] [--concurrency 4,16]
//
// Three outbox runs per concurrency, each in its own process on a fresh database:
//   steady    one worker sends everything;
//   graceful  the worker is stopped (SIGTERM) halfway and a new one finishes;
//   crash     the worker is SIGKILLed halfway and a new one finishes. Messages that were in flight
//             wait for their lease to run out (the provider timeout plus a 2 s margin) before they
//             are sent again; a message the provider answered just before the kill is sent twice
//             (the documented window; a provider with idempotency keys drops the repeat).
// Results go to bench/results/outbox-<date>.json. bench/run.js (npm run bench) imports
// outboxBench() and runs it as one of its scenarios, with fewer messages and rounds.
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, '..', 'dist');
const { openStore } = await import(join(DIST, 'store/sqlite.js'));
const { Outbox, smsMigrations } = await import(join(DIST, 'sms/outbox.js'));
const { createHttpProvider, httpProviderSchema } = await import(join(DIST, 'sms/http-provider.js'));
const { startAossms, DEFAULT_CREDENTIALS } = await import(join(HERE, '..', 'build/standins/aossms.js'));

const PROVIDER_TIMEOUT = '1s';

function providerConfig(endpoint) {
  return httpProviderSchema.parse({
    kind: 'http',
    url: endpoint,
    body: { ...DEFAULT_CREDENTIALS, message: '{message}', phoneNumber: '{to}', ref: '{messageId}' },
    timeout: PROVIDER_TIMEOUT,
    error: { match: '/"responseCode":300/' },
    retry: { count: 2, interval: '1s' },
  });
}

// ---------------------------------------------------------------------------------------------
// Worker: one outbox process on the given database, until it is told to stop or killed.

// Imported by bench/run.js, this file only defines outboxBench(); run directly, it is the
// benchmark's main or one of its worker processes.
const isMain = process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url;

if (!isMain) {
  // nothing to start
} else if (process.argv[2] === 'raw') {
  const [, , , endpoint, n, concurrency] = process.argv;
  process.send?.('ready');
  process.once('message', () => {
    void rawPosts(endpoint, Number(n), Number(concurrency)).then((ms) => {
      process.send?.({ ms });
      process.exit(0);
    });
  });
} else if (process.argv[2] === 'worker') {
  const [, , , db, endpoint, concurrency] = process.argv;
  const store = openStore(`sqlite:${db}`, { migrations: smsMigrations });
  const outbox = new Outbox({ store, providers: { p: createHttpProvider('p', providerConfig(endpoint)) }, concurrency: Number(concurrency) });
  process.on('SIGTERM', () => {
    void outbox.stop({ graceMs: 5000 }).then(() => {
      store.close();
      process.exit(0);
    });
  });
  outbox.start();
  process.send?.('ready');
  setInterval(() => undefined, 1 << 30); // keep the process alive
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: { messages: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '4,16' }, rounds: { type: 'string', default: '3' } },
  });
  const n = Number(values.messages);
  const rounds = Number(values.rounds);
  const levels = values.concurrency.split(',').map(Number);
  const bench = await outboxBench({ messages: n, levels, rounds });
  const date = new Date().toISOString().slice(0, 10);
  const result = {
    date: new Date().toISOString(),
    command: `node bench/outbox.js --messages ${n} --concurrency ${levels.join(',')} --rounds ${rounds}`,
    machine: { node: process.version, platform: `${process.platform} ${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model ?? '', loadavg: loadavg().map((l) => round(l, 2)) },
    ...bench,
  };
  const file = join(HERE, 'results', `outbox-${date}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  log(`written ${file}`);
}

/**
 * Per concurrency level: the median of `rounds` runs of the baseline and of the outbox steady,
 * restarted gracefully and crashed halfway, with each one's ratio to the baseline; then the
 * durable accept rate.
 */
export async function outboxBench({ messages: n, levels, rounds }) {
  const standIn = await startAossms();
  const runs = [];
  try {
    for (const c of levels) {
      // Rounds interleave the four kinds, so a noisy neighbour slows all of them alike; the median
      // of each is reported, every sample is kept.
      const samples = { baseline: [], steady: [], graceful: [], crash: [] };
      for (let r = 1; r <= rounds; r++) {
        samples.baseline.push(await baselineRun(standIn, n, c));
        samples.steady.push(await outboxRun(standIn, n, c, 'none'));
        samples.graceful.push(await outboxRun(standIn, n, c, 'SIGTERM'));
        samples.crash.push(await outboxRun(standIn, n, c, 'SIGKILL'));
        const last = (k) => samples[k][samples[k].length - 1].smsPerSecond;
        log(`c=${c} round ${r}: baseline ${last('baseline')}/s, outbox ${last('steady')}/s, graceful restart ${last('graceful')}/s, crash restart ${last('crash')}/s`);
      }
      const baseline = summary(samples.baseline);
      const withRatio = (list) => {
        const m = summary(list);
        return { ...m, ratioToBaseline: round(m.smsPerSecond / baseline.smsPerSecond, 3) };
      };
      const run = { concurrency: c, baseline, steady: withRatio(samples.steady), gracefulRestart: withRatio(samples.graceful), crashRestart: withRatio(samples.crash) };
      log(`c=${c} median: baseline ${baseline.smsPerSecond}/s; outbox ${run.steady.smsPerSecond}/s (×${run.steady.ratioToBaseline}); graceful restart ${run.gracefulRestart.smsPerSecond}/s (×${run.gracefulRestart.ratioToBaseline}); crash restart ${run.crashRestart.smsPerSecond}/s (×${run.crashRestart.ratioToBaseline})`);
      runs.push(run);
    }
    const accept = acceptRate(Math.min(n, 2000));
    log(`accept: ${accept.acceptsPerSecond} accepts/s (one durable transaction each)`);
    return { messages: n, providerTimeout: PROVIDER_TIMEOUT, sqlite: 'WAL, synchronous=FULL', runs, accept };
  } finally {
    await standIn.close();
  }
}

/** The median run by throughput, with every sample's rate alongside. */
function summary(list) {
  const sorted = [...list].sort((a, b) => a.smsPerSecond - b.smsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { ...median, samples: list.map((r) => r.smsPerSecond) };
}

/**
 * The baseline: what the provider endpoint takes from a plain keep-alive client that stores
 * nothing. It runs in its own process like the outbox workers, so both get the same CPUs.
 */
async function baselineRun(standIn, n, concurrency) {
  const before = standIn.delivered.length;
  const child = fork(fileURLToPath(import.meta.url), ['raw', standIn.endpoint, String(n), String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  const done = new Promise((resolve) => child.once('message', resolve));
  child.send('go');
  const { ms } = await done;
  if (standIn.delivered.length - before !== n) throw new Error('baseline: not every POST was delivered');
  return { messages: n, ms: round(ms), smsPerSecond: round((n / ms) * 1000) };
}

async function rawPosts(endpoint, n, concurrency) {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 32 });
  const body = (i) =>
    new URLSearchParams({ ...DEFAULT_CREDENTIALS, message: `bench message ${i}`, phoneNumber: '+819012345678', ref: `raw-${i}` }).toString();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const res = await request(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: body(i),
          dispatcher: agent,
        });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`stand-in answered ${res.statusCode}`);
      }
    }),
  );
  const ms = performance.now() - started;
  await agent.close();
  return ms;
}

async function outboxRun(standIn, n, concurrency, restart) {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-bench-'));
  const db = join(dir, 'bench.db');
  try {
    // Accept everything first, as calls would have; the measurement is delivery.
    const store = openStore(`sqlite:${db}`, { migrations: smsMigrations });
    const o = new Outbox({ store, providers: { p: createHttpProvider('p', providerConfig(standIn.endpoint)) } });
    store.db.transaction(() => {
      for (let i = 0; i < n; i++) o.accept([{ callId: `call-${i}`, description: 'bench', provider: 'p', to: '+819012345678', text: `bench message ${i}` }]);
    })();
    store.close();

    const firstDelivered = standIn.delivered.length;
    const refs = () => standIn.delivered.slice(firstDelivered).map((d) => d.request.fields.ref);
    let worker = await spawnWorker(db, standIn.endpoint, concurrency);
    const started = performance.now();
    let restartedAt;
    if (restart !== 'none') {
      await until(() => standIn.delivered.length - firstDelivered >= n / 2);
      const gone = new Promise((r) => worker.once('exit', r));
      worker.kill(restart);
      await gone;
      restartedAt = performance.now() - started;
      worker = await spawnWorker(db, standIn.endpoint, concurrency);
    }
    await until(() => new Set(refs()).size >= n, 60_000);
    // A message the killed worker delivered but could not mark sent is claimed again once its
    // lease runs out: the run is over when the database says every message is sent, not when the
    // stand-in has seen every one.
    const watch = openStore(`sqlite:${db}`, { migrations: smsMigrations });
    const sent = watch.db.prepare("SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'sent'");
    try {
      await until(() => sent.get().n >= n, 60_000, 50);
    } finally {
      watch.close();
    }
    const ms = performance.now() - started;
    const gone = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    await gone;

    const check = openStore(`sqlite:${db}`, { migrations: smsMigrations });
    const statuses = Object.fromEntries(check.db.prepare('SELECT status, COUNT(*) AS n FROM sms_messages GROUP BY status').all().map((r) => [r.status, r.n]));
    check.close();
    const all = refs();
    const unique = new Set(all).size;
    if (unique !== n || statuses.sent !== n) throw new Error(`outbox ${restart}: ${unique} unique delivered, statuses ${JSON.stringify(statuses)}`);
    return {
      messages: n,
      ms: round(ms),
      smsPerSecond: round((n / ms) * 1000),
      ...(restartedAt !== undefined ? { restartAtMs: round(restartedAt) } : {}),
      duplicates: all.length - unique,
      lost: n - unique,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function acceptRate(n) {
  const dir = mkdtempSync(join(tmpdir(), 'outbox-bench-'));
  try {
    const store = openStore(`sqlite:${join(dir, 'a.db')}`, { migrations: smsMigrations });
    const o = new Outbox({ store, providers: { p: { name: 'p', retry: { count: 0, intervalMs: 0 }, send: async () => ({ outcome: 'ok', reason: 'x', latencyMs: 0 }) } } });
    const started = performance.now();
    for (let i = 0; i < n; i++) o.accept([{ callId: `c${i}`, description: 'bench', provider: 'p', to: '+819012345678', text: 'x' }], { once: { callId: `c${i}`, key: 'k' } });
    const ms = performance.now() - started;
    store.close();
    return { accepts: n, ms: round(ms), acceptsPerSecond: round((n / ms) * 1000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function spawnWorker(db, endpoint, concurrency) {
  // BENCH_CPU_PROF=DIR writes a V8 CPU profile of each worker there.
  const execArgv = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = fork(fileURLToPath(import.meta.url), ['worker', db, endpoint, String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
  });
}

function until(pred, timeoutMs = 60_000, everyMs = 2) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() > deadline) return reject(new Error('benchmark step timed out'));
      setTimeout(tick, everyMs);
    };
    tick();
  });
}

function round(v, digits = 1) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function log(line) {
  process.stderr.write(`[bench] ${line}\n`);
}
