#!/usr/bin/env node
// How many SMS per second the durable outbox delivers to an instant local provider, on SQLite and
// on PostgreSQL, against a baseline measured in the same run: the same number of raw undici POSTs
// of the same form, at the same concurrency, to the same stand-in. The ratio is the price of
// durability (a durable commit to claim each batch of messages and one to settle them) plus the
// outbox's own bookkeeping.
//
//   npm run build && npm run build:standins && node bench/outbox.js [--messages 5000] [--concurrency 4,16] [--rounds 3] [--backends sqlite,postgres]
//
// Outbox runs per concurrency and backend, each worker in its own process on a fresh database:
//   steady    one worker sends everything;
//   graceful  the worker is stopped (SIGTERM) halfway and a new one finishes;
//   crash     the worker is SIGKILLed halfway and a new one finishes. Messages that were in flight
//             wait for their lease to run out (the provider timeout plus a 2 s margin) before they
//             are sent again; a message the provider answered just before the kill is sent twice
//             (the documented window; a provider with idempotency keys drops the repeat).
// and on PostgreSQL only, where two instances can share one outbox:
//   pair      two workers, A and B, drain one outbox together; every message must reach the
//             stand-in exactly once (counted there, per message id);
//   takeover  A and B drain it together and A is SIGKILLed a third of the way: the time from the
//             kill to B's first delivery of a message A held under its lease, beside the lease.
// The PostgreSQL cluster is the tests' own (test/helpers/postgres.ts, built by build:standins):
// initdb in a temp folder, its own port, fsync on; removed at the end.
// Results go to bench/results/outbox-<date>.json and .md. bench/run.js (npm run bench) imports
// outboxBench() and runs it as one of its scenarios, with fewer messages and rounds.
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { outboxSection } from './lib/report.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, '..', 'dist');
const BUILD = join(HERE, '..', 'build');
const { openAnyStore } = await import(join(DIST, 'store/open.js'));
const { Outbox, smsMigrations } = await import(join(DIST, 'sms/outbox.js'));
const { createHttpProvider, httpProviderSchema } = await import(join(DIST, 'sms/http-provider.js'));
const { startAossms, DEFAULT_CREDENTIALS } = await import(join(BUILD, 'standins/aossms.js'));

const PROVIDER_TIMEOUT = '1s';
/** The outbox's default, stated here because the takeover run compares with the lease. */
const LEASE_MARGIN_MS = 2000;
/** Connections per worker's PostgreSQL pool (the store's default). */
const PG_POOL = 10;
const BACKENDS = ['sqlite', 'postgres'];

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

const LEASE_MS = createHttpProvider('p', providerConfig('http://127.0.0.1:1/')).timeoutMs + LEASE_MARGIN_MS;

function storeSetting(url) {
  return url.startsWith('sqlite:') ? url : { url, pool: PG_POOL };
}

// ---------------------------------------------------------------------------------------------
// Worker: one outbox process on the given database, from 'go' until it is told to stop or killed.

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
  const [, , , url, endpoint, concurrency] = process.argv;
  const store = await openAnyStore(storeSetting(url), { migrations: smsMigrations });
  const outbox = new Outbox({
    store,
    providers: { p: createHttpProvider('p', providerConfig(endpoint)) },
    concurrency: Number(concurrency),
    leaseMarginMs: LEASE_MARGIN_MS,
  });
  process.on('SIGTERM', () => {
    void outbox
      .stop({ graceMs: 5000 })
      .then(() => store.close())
      .then(() => process.exit(0));
  });
  process.once('message', () => outbox.start());
  process.send?.({ workerId: outbox.workerId });
  setInterval(() => undefined, 1 << 30); // keep the process alive
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '4,16' },
      rounds: { type: 'string', default: '3' },
      backends: { type: 'string', default: BACKENDS.join(',') },
    },
  });
  const n = Number(values.messages);
  const rounds = Number(values.rounds);
  const levels = values.concurrency.split(',').map(Number);
  const backends = values.backends.split(',').map((b) => b.trim());
  const bench = await outboxBench({ messages: n, levels, rounds, backends });
  const date = new Date().toISOString().slice(0, 10);
  const result = {
    date: new Date().toISOString(),
    command: `node bench/outbox.js --messages ${n} --concurrency ${levels.join(',')} --rounds ${rounds} --backends ${backends.join(',')}`,
    machine: { node: process.version, platform: `${process.platform} ${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model ?? '', loadavg: loadavg().map((l) => round(l, 2)) },
    ...bench,
  };
  const base = join(HERE, 'results', `outbox-${date}`);
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
  const m = result.machine;
  const md = [
    `# Outbox benchmark, ${result.date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `\`${result.command}\` — ${m.cpus} × ${m.cpu}, Node ${m.node}; load average at the end ${m.loadavg.join(' / ')}. Medians of ${rounds} rounds; every sample is in the .json.`,
    '',
    ...bench.runs.flatMap((run) => [`## ${run.concurrency} in flight per worker`, '', ...outboxSection(outboxSummary(bench, run))]),
  ].join('\n');
  writeFileSync(`${base}.md`, md);
  log(`written ${base}.json and .md`);
}

/**
 * Per concurrency level: the median of `rounds` runs of the baseline and, per backend, of the
 * outbox steady, restarted gracefully and crashed halfway (and on PostgreSQL two workers together,
 * and a takeover), each with its ratio to the baseline; then the durable accept rate per backend.
 */
export async function outboxBench({ messages: n, levels, rounds, backends = BACKENDS }) {
  for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend ${b} (known: ${BACKENDS.join(', ')})`);
  const standIn = await startAossms();
  const stores = {};
  const runs = [];
  try {
    for (const b of backends) stores[b] = await storeFactory(b);
    for (const c of levels) {
      // Rounds interleave every kind on both backends, so a noisy neighbour slows all of them
      // alike; the median of each is reported, every sample is kept.
      const samples = { baseline: [] };
      for (const b of backends) samples[b] = { steady: [], graceful: [], crash: [], ...(b === 'postgres' ? { pair: [], takeover: [] } : {}) };
      for (let r = 1; r <= rounds; r++) {
        samples.baseline.push(await baselineRun(standIn, n, c));
        const line = [`baseline ${samples.baseline.at(-1).smsPerSecond}/s`];
        for (const b of backends) {
          const s = samples[b];
          s.steady.push(await outboxRun(standIn, stores[b], n, c, 'none'));
          s.graceful.push(await outboxRun(standIn, stores[b], n, c, 'SIGTERM'));
          s.crash.push(await outboxRun(standIn, stores[b], n, c, 'SIGKILL'));
          line.push(`${b}: steady ${s.steady.at(-1).smsPerSecond}/s, graceful ${s.graceful.at(-1).smsPerSecond}/s, crash ${s.crash.at(-1).smsPerSecond}/s`);
          if (b === 'postgres') {
            s.pair.push(await pairRun(standIn, stores[b], n, c, false));
            s.takeover.push(await pairRun(standIn, stores[b], n, c, true));
            const t = s.takeover.at(-1).takeover;
            line.push(`pair ${s.pair.at(-1).smsPerSecond}/s (${s.pair.at(-1).duplicates} sent twice), takeover: B's first delivery of A's ${t.held} leased messages ${t.killToFirstByBMs} ms after the kill (lease ${LEASE_MS} ms)`);
          }
        }
        log(`c=${c} round ${r}: ${line.join('; ')}`);
      }
      const baseline = summary(samples.baseline);
      const withRatio = (list) => {
        const m = summary(list);
        return { ...m, ratioToBaseline: round(m.smsPerSecond / baseline.smsPerSecond, 3) };
      };
      const run = { concurrency: c, baseline };
      for (const b of backends) {
        const s = samples[b];
        run[b] = { steady: withRatio(s.steady), gracefulRestart: withRatio(s.graceful), crashRestart: withRatio(s.crash) };
        run[b].meets500 = run[b].steady.smsPerSecond >= 500;
        if (b === 'postgres') {
          run[b].pair = withRatio(s.pair);
          run[b].takeover = takeoverSummary(s.takeover, baseline);
        }
        const o = run[b];
        log(`c=${c} ${b} median: outbox ${o.steady.smsPerSecond}/s (×${o.steady.ratioToBaseline} of ${baseline.smsPerSecond}/s raw)${o.meets500 ? '' : ' BELOW 500/s'}; graceful restart ${o.gracefulRestart.smsPerSecond}/s (×${o.gracefulRestart.ratioToBaseline}); crash restart ${o.crashRestart.smsPerSecond}/s (×${o.crashRestart.ratioToBaseline})`);
        if (o.pair) log(`c=${c} ${b} median: two workers ${o.pair.smsPerSecond}/s (×${o.pair.ratioToBaseline}), exactly once: ${o.pair.exactlyOnce}; takeover ${o.takeover.killToFirstByBMs.median} ms from the kill to B's first delivery of A's messages (lease ${LEASE_MS} ms)`);
      }
      runs.push(run);
    }
    const accept = {};
    for (const b of backends) {
      accept[b] = await acceptRate(stores[b], Math.min(n, 2000));
      log(`accept on ${b}: ${accept[b].acceptsPerSecond} accepts/s (one durable transaction each)`);
    }
    return {
      messages: n,
      providerTimeout: PROVIDER_TIMEOUT,
      leaseMs: LEASE_MS,
      backends,
      sqlite: 'WAL, synchronous=FULL',
      postgres: stores.postgres?.describe,
      runs,
      accept,
    };
  } finally {
    for (const s of Object.values(stores)) await s.destroy();
    await standIn.close();
  }
}

/**
 * Fresh, empty databases for one backend: a file in a temp folder, or a database on a cluster of
 * the bench's own. PostgreSQL keeps its defaults for durability (fsync, synchronous_commit on), as
 * SQLite runs with synchronous=FULL: both commit to disk before a message counts as claimed or sent.
 */
async function storeFactory(kind) {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-bench-'));
    let i = 0;
    return {
      kind,
      fresh: async () => `sqlite:${join(dir, `bench-${++i}.db`)}`,
      destroy: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const { startTestCluster } = await import(join(BUILD, 'helpers/postgres.js'));
  const cluster = await startTestCluster({ durable: true });
  const probe = await openAnyStore(cluster.url);
  const version = (await probe.one('SHOW server_version')).server_version;
  await probe.close();
  log(`PostgreSQL ${version}: a cluster of the bench's own on port ${cluster.port}`);
  return {
    kind,
    describe: `PostgreSQL ${version} on loopback TCP, fsync and synchronous_commit on (defaults), pool ${PG_POOL} per worker`,
    fresh: () => cluster.database(),
    destroy: async () => cluster.destroy(),
  };
}

/**
 * One concurrency level of outboxBench()'s result as the bench report shows it (bench/run.js's
 * outbox scenario, bench/lib/report.js's table): medians, ratios, and the checks.
 */
export function outboxSummary(r, run) {
  const backend = (b) => {
    const o = run[b];
    if (!o) return undefined;
    return {
      store: r[b],
      steadySmsPerSecond: o.steady.smsPerSecond,
      gracefulRestartSmsPerSecond: o.gracefulRestart.smsPerSecond,
      crashRestartSmsPerSecond: o.crashRestart.smsPerSecond,
      ratioToBaseline: { steady: o.steady.ratioToBaseline, gracefulRestart: o.gracefulRestart.ratioToBaseline, crashRestart: o.crashRestart.ratioToBaseline },
      meets500: o.meets500,
      duplicatesAfterCrash: o.crashRestart.duplicates,
      lost: o.steady.lost + o.gracefulRestart.lost + o.crashRestart.lost,
      acceptsPerSecond: r.accept[b].acceptsPerSecond,
      ...(o.pair
        ? {
            pair: { smsPerSecond: o.pair.smsPerSecond, ratioToBaseline: o.pair.ratioToBaseline, byWorker: o.pair.byWorker, duplicates: o.pair.duplicates, exactlyOnce: o.pair.exactlyOnce },
            takeover: {
              smsPerSecond: o.takeover.smsPerSecond,
              ratioToBaseline: o.takeover.ratioToBaseline,
              byWorker: o.takeover.byWorker,
              duplicates: o.takeover.duplicates,
              lost: o.takeover.lost,
              ...o.takeover.takeover,
              killToFirstByBMsSamples: o.takeover.killToFirstByBMs.samples,
            },
          }
        : {}),
    };
  };
  return {
    messages: r.messages,
    concurrency: run.concurrency,
    leaseMs: r.leaseMs,
    baselineSmsPerSecond: run.baseline.smsPerSecond,
    sqlite: backend('sqlite'),
    postgres: backend('postgres'),
  };
}

/** The median run by throughput, with every sample's rate alongside. */
function summary(list) {
  const sorted = [...list].sort((a, b) => a.smsPerSecond - b.smsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const out = { ...median, samples: list.map((r) => r.smsPerSecond) };
  if (list.every((r) => 'exactlyOnce' in r)) out.exactlyOnce = list.every((r) => r.exactlyOnce);
  return out;
}

function takeoverSummary(list, baseline) {
  const m = summary(list);
  const times = list.map((r) => r.takeover.killToFirstByBMs).filter((t) => t !== null);
  const sorted = [...times].sort((a, b) => a - b);
  return {
    ...m,
    ratioToBaseline: round(m.smsPerSecond / baseline.smsPerSecond, 3),
    leaseMs: LEASE_MS,
    killToFirstByBMs: { median: sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : null, samples: list.map((r) => r.takeover.killToFirstByBMs) },
  };
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

/** Accepts `n` messages in one transaction, as calls would have before the workers start. */
async function acceptAll(url, endpoint, n) {
  const store = await openAnyStore(storeSetting(url), { migrations: smsMigrations });
  try {
    const o = new Outbox({ store, providers: { p: createHttpProvider('p', providerConfig(endpoint)) } });
    const messages = Array.from({ length: n }, (_, i) => ({ callId: `call-${i}`, description: 'bench', provider: 'p', to: '+819012345678', text: `bench message ${i}` }));
    await o.accept(messages);
  } finally {
    await store.close();
  }
}

/** What the database says of the run: messages per status. */
async function statuses(url) {
  const store = await openAnyStore(storeSetting(url));
  try {
    const rows = await store.query('SELECT status, COUNT(*) AS n FROM sms_messages GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  } finally {
    await store.close();
  }
}

/**
 * Until the database says every message is sent. A message a killed worker delivered but could
 * not mark sent is claimed again once its lease runs out: the run is over when the database says
 * so, not when the stand-in has seen every message.
 */
async function allSent(url, n) {
  const watch = await openAnyStore(storeSetting(url));
  try {
    await until('every message marked sent', async () => Number((await watch.one("SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'sent'")).n) >= n, 50);
  } finally {
    await watch.close();
  }
}

async function outboxRun(standIn, stores, n, concurrency, restart) {
  const url = await stores.fresh();
  await acceptAll(url, standIn.endpoint, n);

  const firstDelivered = standIn.delivered.length;
  const refs = () => standIn.delivered.slice(firstDelivered).map((d) => d.request.fields.ref);
  const unique = uniqueCount(standIn);
  let worker = await spawnWorker(url, standIn.endpoint, concurrency);
  const started = performance.now();
  worker.go();
  let restartedAt;
  if (restart !== 'none') {
    await until('half the messages delivered', () => standIn.delivered.length - firstDelivered >= n / 2);
    await worker.kill(restart);
    restartedAt = performance.now() - started;
    worker = await spawnWorker(url, standIn.endpoint, concurrency);
    worker.go();
  }
  await until('every message delivered', () => unique() >= n);
  await allSent(url, n);
  const ms = performance.now() - started;
  await worker.kill('SIGTERM');

  const status = await statuses(url);
  const all = refs();
  const delivered = new Set(all).size;
  if (delivered !== n || status.sent !== n) throw new Error(`outbox on ${stores.kind} ${restart}: ${delivered} unique delivered, statuses ${JSON.stringify(status)}`);
  return {
    messages: n,
    ms: round(ms),
    smsPerSecond: round((n / ms) * 1000),
    ...(restartedAt !== undefined ? { restartAtMs: round(restartedAt) } : {}),
    duplicates: all.length - delivered,
    lost: n - delivered,
  };
}

/**
 * Two workers, A and B, on one PostgreSQL outbox. Each posts to the stand-in with its own name in
 * the query string, so every delivery is attributed to the worker that made it.
 *
 * With `kill`, A is SIGKILLed a third of the way through. The messages A held at that moment are
 * the rows still `sending` under its name once it is dead (B cannot touch them before their lease
 * runs out); B's first delivery of one of them, against the stand-in's clock, gives the takeover
 * time, to be read against the lease (provider timeout + margin) and against when the first of
 * those leases ran out.
 */
async function pairRun(standIn, stores, n, concurrency, kill) {
  const url = await stores.fresh();
  await acceptAll(url, standIn.endpoint, n);

  const firstDelivered = standIn.delivered.length;
  const deliveries = () => standIn.delivered.slice(firstDelivered).map((d) => ({ ref: d.request.fields.ref, by: d.request.path.slice(-1), at: d.at }));
  const unique = uniqueCount(standIn);
  // the name is the last character of the path the stand-in records
  const endpoint = (name) => `${standIn.endpoint}?worker=${name}`;
  const a = await spawnWorker(url, endpoint('A'), concurrency);
  const b = await spawnWorker(url, endpoint('B'), concurrency);
  const started = performance.now();
  a.go();
  b.go();
  let takeover;
  if (kill) {
    await until('a third of the messages delivered', () => standIn.delivered.length - firstDelivered >= n / 3);
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    const watch = await openAnyStore(storeSetting(url));
    let held;
    try {
      held = await watch.query("SELECT id, lease_until FROM sms_messages WHERE status = 'sending' AND claimed_by = ?", [a.workerId]);
    } finally {
      await watch.close();
    }
    const heldIds = new Set(held.map((r) => r.id));
    await until("A's leased messages delivered by B", () => heldIds.size === 0 || deliveries().filter((d) => d.by === 'B' && heldIds.has(d.ref)).length >= heldIds.size, 20);
    const byB = deliveries().filter((d) => d.by === 'B' && heldIds.has(d.ref));
    const firstByB = byB.length ? Math.min(...byB.map((d) => d.at)) : null;
    const lastByB = byB.length ? Math.max(...byB.map((d) => d.at)) : null;
    const firstExpiry = held.length ? Math.min(...held.map((r) => Number(r.lease_until))) : null;
    const aDelivered = new Set(deliveries().filter((d) => d.by === 'A').map((d) => d.ref));
    takeover = {
      held: held.length,
      // held by A, and its request had reached the stand-in before the kill: B sends these again
      deliveredByABeforeKill: held.filter((r) => aDelivered.has(r.id)).length,
      leaseMs: LEASE_MS,
      firstLeaseRanOutAfterKillMs: firstExpiry === null ? null : firstExpiry - killedAt,
      killToFirstByBMs: firstByB === null ? null : firstByB - killedAt,
      firstByBAfterLeaseRanOutMs: firstByB === null ? null : firstByB - firstExpiry,
      killToAllTakenByBMs: lastByB === null ? null : lastByB - killedAt,
    };
  }
  await until('every message delivered', () => unique() >= n);
  await allSent(url, n);
  const ms = performance.now() - started;
  await b.kill('SIGTERM');
  if (!kill) await a.kill('SIGTERM');

  const status = await statuses(url);
  const all = deliveries();
  const perMessage = new Map();
  for (const d of all) perMessage.set(d.ref, (perMessage.get(d.ref) ?? 0) + 1);
  const delivered = perMessage.size;
  if (delivered !== n || status.sent !== n) throw new Error(`outbox pair${kill ? ' takeover' : ''}: ${delivered} unique delivered, statuses ${JSON.stringify(status)}`);
  const duplicates = all.length - delivered;
  return {
    messages: n,
    ms: round(ms),
    smsPerSecond: round((n / ms) * 1000),
    byWorker: { A: all.filter((d) => d.by === 'A').length, B: all.filter((d) => d.by === 'B').length },
    duplicates,
    messagesSentMoreThanOnce: [...perMessage.values()].filter((c) => c > 1).length,
    lost: n - delivered,
    // without a kill nothing may be sent twice: the claims (FOR UPDATE SKIP LOCKED) keep each
    // message with one worker
    ...(kill ? { takeover } : { exactlyOnce: [...perMessage.values()].every((c) => c === 1) && delivered === n }),
  };
}

async function acceptRate(stores, n) {
  const url = await stores.fresh();
  const store = await openAnyStore(storeSetting(url), { migrations: smsMigrations });
  try {
    const o = new Outbox({ store, providers: { p: { name: 'p', retry: { count: 0, intervalMs: 0 }, send: async () => ({ outcome: 'ok', reason: 'x', latencyMs: 0 }) } } });
    const started = performance.now();
    for (let i = 0; i < n; i++) await o.accept([{ callId: `c${i}`, description: 'bench', provider: 'p', to: '+819012345678', text: 'x' }], { once: { callId: `c${i}`, key: 'k' } });
    const ms = performance.now() - started;
    return { accepts: n, ms: round(ms), acceptsPerSecond: round((n / ms) * 1000) };
  } finally {
    await store.close();
  }
}

/** A worker process, ready (store open, migrated) but not started until go(). */
function spawnWorker(url, endpoint, concurrency) {
  // BENCH_CPU_PROF=DIR writes a V8 CPU profile of each worker there.
  const execArgv = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = fork(fileURLToPath(import.meta.url), ['worker', url, endpoint, String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  return new Promise((resolve, reject) => {
    const early = (code) => reject(new Error(`worker exited (${code}) before it was ready`));
    child.once('exit', early);
    child.once('message', (m) => {
      child.off('exit', early);
      resolve({
        workerId: m.workerId,
        go: () => child.send('go'),
        kill: (signal) => {
          const gone = new Promise((r) => child.once('exit', r));
          child.kill(signal);
          return gone;
        },
      });
    });
  });
}

/** How many distinct messages the stand-in has delivered since now; counted as it goes, as it is polled often. */
function uniqueCount(standIn) {
  let seen = standIn.delivered.length;
  const refs = new Set();
  return () => {
    for (; seen < standIn.delivered.length; seen++) refs.add(standIn.delivered[seen].request.fields.ref);
    return refs.size;
  };
}

/**
 * Until `pred` (sync or async) holds; checked every `everyMs`. The limit is generous: on a shared
 * machine a run can be several times slower than usual, and it should then report slow figures,
 * not fail.
 */
function until(step, pred, everyMs = 2, timeoutMs = 300_000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        if (await pred()) return resolve();
      } catch (e) {
        return reject(e);
      }
      if (Date.now() > deadline) return reject(new Error(`benchmark step timed out: ${step}`));
      setTimeout(tick, everyMs);
    };
    void tick();
  });
}

function round(v, digits = 1) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function log(line) {
  process.stderr.write(`[bench] ${line}\n`);
}
