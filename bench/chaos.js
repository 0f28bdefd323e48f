#!/usr/bin/env node
// npm run chaos: the service under load while things break, loopback only, bounded in time.
//
// Real SIP callers at a steady rate through a mix of stages on the local test PBX
// (docker/asterisk/up.sh), placed by one long-lived SIPp process per kind of call
// (bench/sipp/chaos_*.xml, one caller number per call from an injection file; how each call ended
// is read from the scenario's log lines and SIPp's error log, bench/lib/sipp-calls.js):
//   queue   extension 100: the caller waits in queue "support" and presses # (RFC 4733); stage
//           queue-exit accepts an SMS (text "chaos <callId>"), says goodbye and hangs up
//   route   extension 501: stage t501's route step asks a routing API stand-in that answers
//           slowly (40 %: 0.3-3 s, past the 2 s timeout about a third of the time), with garbage
//           (10 %) or 500 (10 %) at random; an answer hangs up, a failure is the dialplan's fallback
//           (route fallback: hang up)
// and a hook on every call event (call.start/answer/end, queue.join/key-exit/abandon,
// stage.entered) to a receiver stand-in. Meanwhile the run SIGKILLs the service every 20-40 s (and
// starts it again at once), restarts Asterisk twice, and the SMS provider stand-in fails 10 % of
// requests (500) and hangs 2 % (the provider's 2 s timeout ends them; retried).
//
// At the end, with the load stopped and the queues drained, it reports (and --assert exits 1 on):
//   - the callers placed the calls planned (rate × minutes), at least 99 % of them
//   - every SIPp call ended normally (got its BYE), except those an Asterisk restart cut (counted)
//   - every SMS the outbox accepted was delivered by the stand-in at least once, and exactly once
//     but for the documented at-least-once window (a kill between the provider's answer and the
//     outbox's record of it; docs/sms.md): duplicates are counted and printed, not hidden
//   - every hook run reached an end state (ok, failed or skipped)
//   - no unhandled rejection, uncaught exception or fatal line, no exit but the kills
//   - the service's RSS and open file descriptors within 10 % of before, both measured on a process
//     started fresh and warmed up the same way, before the run and after it (on the store it left)
// Results: bench/results/chaos-<date>.json and .md (or --out FILE.json). A failed call comes with
// what the service processes alive around it and Asterisk's log said of its channel; each process's
// log, and each SIPp process's call and error logs, are kept in the run dir, which stays when a check
// fails (or with --keep-dir).
//
//   npm run chaos                          10 minutes at 20 calls/s (the issue's run)
//   npm run chaos -- --minutes 2 --rate 5  the short form (test/e2e/chaos.test.ts runs it)
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { createServer } from 'node:http';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..');
const DIST = join(REPO, 'dist');
const { readAsteriskEnv } = await import(join(DIST, 'demo/local-pbx.js'));
const { placeCalls } = await import(join(HERE, 'lib/sipp-calls.js'));
const { startAossms, DEFAULT_CREDENTIALS, http500, hang, ok } = await import(join(REPO, 'build/standins/aossms.js'));
const { startRouteApi, json, raw, http, slow } = await import(join(REPO, 'build/standins/route-api.js'));
const Database = (await import('better-sqlite3')).default;
const execFileP = promisify(execFile);

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
    'asterisk-restarts': { type: 'string', default: '2' },
    'kill-min': { type: 'string', default: '20' },
    'kill-max': { type: 'string', default: '40' },
    out: { type: 'string' },
    assert: { type: 'boolean', default: false },
    'keep-dir': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write('npm run chaos -- [--minutes 10] [--rate 20] [--asterisk-restarts 2] [--kill-min 20] [--kill-max 40] [--out FILE.json] [--assert] [--keep-dir]\n');
  process.exit(0);
}
const MINUTES = Number(opt.minutes);
const RATE = Number(opt.rate);
const RUN_MS = MINUTES * 60_000;
const PLANNED = Math.round((RATE * RUN_MS) / 1000);
const KILL_MIN = Number(opt['kill-min']) * 1000;
const KILL_MAX = Number(opt['kill-max']) * 1000;
const AST_RESTARTS = Number(opt['asterisk-restarts']);
const SERVICE_PORT = 24_000 + (process.pid % 1000);
// The callers of each kind: the scenario, the extension, and SIP ports clear of the tests' (5070-5796,
// 6000-6750) and of the stand-in agents' and carriers' (5080, 5090); media below 17000 and above
// Asterisk's RTP range (rtp.conf ends below 16000)
const CALLERS = {
  queue: { scenario: join(HERE, 'sipp/chaos_queue.xml'), service: '100', localPort: 5900, mediaPort: 16900 },
  route: { scenario: join(HERE, 'sipp/chaos_route.xml'), service: '501', localPort: 5904, mediaPort: 16904 },
};
const IDLE_BEFORE_MEASURE_MS = 10_000;
const HOOK_EVENTS = ['call.start', 'call.answer', 'call.end', 'queue.join', 'queue.key-exit', 'queue.abandon', 'stage.entered'];

const log = (...a) => process.stderr.write(`[chaos ${((Date.now() - t0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const dir = mkdtempSync(join(tmpdir(), 'call-actions-chaos-'));

// ---- stand-ins -----------------------------------------------------------------------------------

const sms = await startAossms();
// 10 % fail, 2 % hang, the rest ok: a behaviour per request, queued ahead of the requests
let queuedBehaviours = 0;
function topUp() {
  while (queuedBehaviours - sms.requests.length < 200) {
    const r = Math.random();
    sms.enqueue(r < 0.1 ? http500 : r < 0.12 ? hang() : ok);
    queuedBehaviours++;
  }
}
topUp();
const topUpTimer = setInterval(topUp, 100);

const routeApi = await startRouteApi();
const routeAnswers = { ok: 0, slow: 0, garbage: 0, http500: 0 };
routeApi.respond = () => {
  const r = Math.random();
  if (r < 0.1) return routeAnswers.garbage++, raw('<<not json', 'application/json');
  if (r < 0.2) return routeAnswers.http500++, http(500, 'oops');
  if (r < 0.6) return routeAnswers.slow++, slow(300 + Math.floor(Math.random() * 2700), json({ status: 'success', result: 'hangup' }));
  return routeAnswers.ok++, json({ status: 'success', result: 'hangup' });
};

// hook receiver: counts every request by its idempotency key (the run id)
const hookHits = new Map();
const hookServer = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const key = String(req.headers['idempotency-key'] ?? '');
    hookHits.set(key, (hookHits.get(key) ?? 0) + 1);
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
});
await new Promise((r) => hookServer.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${hookServer.address().port}`;

// ---- what Asterisk says of each caller --------------------------------------------------------------

/**
 * The dialplan's CallActionsFallback user events, by caller number, read over a bare AMI socket that
 * logs in again after each Asterisk restart: a caller whose # reached no service (killed, not yet
 * back) is put back in its queue by the fallback, a sensible place where the run's SIPp caller then
 * waits until its own timeout. Those calls are counted as the fallback's, not as lost.
 */
function watchAsterisk(env) {
  const byCaller = new Map();
  // every channel a caller's INVITE made (its id is what the service logs, its name what Asterisk
  // logs), to show what each side did with a call that failed
  const channelsByCaller = new Map();
  let socket;
  let closed = false;
  const connect = () => {
    if (closed) return;
    let buf = '';
    socket = net.connect({ host: env.amiHost, port: env.amiPort });
    socket.setEncoding('utf8');
    // Only the two events read below: the whole `call` class (Newstate, VarSet… for every channel)
    // is tens of events per call, which Asterisk writes and this process parses on the loop that
    // places the calls; with it, a 10-minute run placed 8,200 calls instead of 12,000.
    socket.on('connect', () =>
      socket.write(
        `Action: Login\r\nUsername: ${env.amiUser}\r\nSecret: ${env.amiPass}\r\nEvents: user,call\r\n\r\n` +
          'Action: Filter\r\nOperation: Add\r\nFilter: Event: (Newchannel|UserEvent)\r\n\r\n',
      ),
    );
    socket.on('data', (chunk) => {
      buf += chunk;
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const m = Object.fromEntries(block.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        if (m.event === 'UserEvent' && m.userevent === 'CallActionsFallback' && m.calleridnum) {
          byCaller.set(m.calleridnum, [...(byCaller.get(m.calleridnum) ?? []), { at: Date.now(), stage: m.stage }]);
        } else if (m.event === 'Newchannel' && m.calleridnum && m.uniqueid) {
          channelsByCaller.set(m.calleridnum, [...(channelsByCaller.get(m.calleridnum) ?? []), { id: m.uniqueid, name: m.channel, at: Date.now() }]);
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => setTimeout(connect, 500));
  };
  connect();
  return {
    byCaller,
    channelsByCaller,
    close() {
      closed = true;
      socket?.destroy();
    },
  };
}

// ---- the service ---------------------------------------------------------------------------------

// the PBX first: its env file (ports, credentials) is what the service's config is written from
await script('up.sh');
const env = readAsteriskEnv();
let asterisk;
const config = `asterisk:
  ari: { url: "${env.ariUrl}", user: "\${ARI_USER}", password: "\${ARI_PASSWORD}", app: call-actions, timeout: 3s }
  ami: { host: ${env.amiHost}, port: ${env.amiPort}, user: "\${AMI_USER}", secret: "\${AMI_SECRET}" }
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${SERVICE_PORT} }
log: { level: info }
tts: { cacheDir: ${join(dir, 'tts')} }
sms:
  concurrency: 8
  providers:
    aossms:
      kind: http
      url: ${sms.endpoint}
      body: { token: "${DEFAULT_CREDENTIALS.token}", clientId: "${DEFAULT_CREDENTIALS.clientId}", smsCode: "${DEFAULT_CREDENTIALS.smsCode}", message: "{message}", phoneNumber: "{to}" }
      timeout: 2s
      retry: { count: 8, interval: 1s, backoff: 1.5, maxInterval: 5s }
stages:
  queue-exit:
    - sms: { description: chaos, provider: aossms, to: [caller], text: "chaos {callId}", oncePerCall: true }
    - say: "Goodbye."
    - hangup: {}
  t501:
    - route: { url: ${routeApi.endpoint}, timeout: 2s, fallback: { hangup: {} } }
hooks:
${HOOK_EVENTS.map((e) => `  - { name: ${e.replace('.', '-')}, on: ${e}, request: { url: "${hookUrl}/${e}", body: { call: "{callId}", event: "{event}" }, timeout: 2s }, retry: { count: 5, interval: 1s } }`).join('\n')}
`;
const configFile = join(dir, 'config.yaml');
writeFileSync(configFile, config);
const serviceEnv = { ...process.env, ARI_USER: env.ariUser, ARI_PASSWORD: env.ariPass, AMI_USER: env.amiUser, AMI_SECRET: env.amiPass };

const processes = []; // { pid, startedAt, exit: {code, signal} | undefined, killedByUs, stderr, badLines }
let current;

async function startService() {
  const child = spawn(process.execPath, [join(DIST, 'cli.js'), 'start', '--config', configFile], { env: serviceEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  // each process's whole output, kept in the run dir: what it did with a call that failed is read from it
  const logFile = join(dir, `service-${processes.length + 1}-${child.pid}.log`);
  const out = createWriteStream(logFile);
  const p = { pid: child.pid, child, startedAt: Date.now(), exitedAt: undefined, exit: undefined, killedByUs: false, stderr: '', badLines: [], logFile, out };
  processes.push(p);
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (c) => {
    out.write(c);
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let l;
      try {
        l = JSON.parse(line);
      } catch {
        p.badLines.push(`not JSON: ${line.slice(0, 200)}`);
        continue;
      }
      if (l.level === 'fatal' || /unhandled|uncaught/i.test(String(l.msg))) p.badLines.push(line.slice(0, 400));
    }
  });
  child.stderr.setEncoding('utf8').on('data', (c) => {
    p.stderr += c;
    out.write(c);
  });
  child.once('exit', (code, signal) => {
    p.exit = { code, signal };
    p.exitedAt = Date.now();
  });
  child.once('close', () => out.end());
  current = p;
  await waitHealthy(60_000);
  return p;
}

async function waitHealthy(timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const res = await fetch(`http://127.0.0.1:${SERVICE_PORT}/health`);
      last = await res.text();
      if (res.status === 200) return;
    } catch (e) {
      last = e.message;
    }
    await sleep(200);
  }
  const p = current;
  throw new Error(`service not healthy within ${timeoutMs} ms: ${last}; pid ${p?.pid} exit ${JSON.stringify(p?.exit)}; stderr: ${p?.stderr.slice(-1500)}; bad lines: ${p?.badLines.slice(-5).join('\n')}`);
}

/**
 * Asks the service's V8 for a full, memory-reducing collection over the inspector, which SIGUSR1
 * opens on 127.0.0.1:9229. Without it the figures compare two processes' GC timing, not what they
 * keep: a process that has just worked off a backlog (a restart after a kill) holds garbage and a
 * young generation grown for the burst, 40 MB more RSS in one run, that the next collection frees.
 */
async function collectGarbage(pid) {
  process.kill(pid, 'SIGUSR1');
  const end = Date.now() + 5000;
  let target;
  while (!target && Date.now() < end) {
    target = await fetch('http://127.0.0.1:9229/json/list').then((r) => r.json()).then((l) => l[0]?.webSocketDebuggerUrl, () => undefined);
    if (!target) await sleep(100);
  }
  if (!target) throw new Error(`the inspector of pid ${pid} did not open on 127.0.0.1:9229`);
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(target);
  await new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
    ws.on('message', (m) => JSON.parse(String(m)).id === 1 && resolve());
  });
  ws.close();
}

/**
 * Where the RSS is, to say where a change went: anonymous memory (V8's heap, malloc) against the
 * mapped files (the node binary, libraries, SQLite's WAL index), and of the anonymous memory glibc's
 * main arena ([heap]), where the main thread's native allocations live (SQLite's page cache among them).
 */
function nativeShare(pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const anonKb = Number(/^Anonymous:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
  let heapKb = 0;
  let inHeap = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]');
    else if (inHeap && line.startsWith('Rss:')) heapKb += Number(/\d+/.exec(line)?.[0] ?? 0);
  }
  return { rssAnonMb: Math.round(anonKb / 102.4) / 10, mallocMainArenaMb: Math.round(heapKb / 102.4) / 10 };
}

/** RSS and fds from /proc, after a full collection; V8's share of the RSS from the service's own /stats, to say where a change went. */
async function resources(pid) {
  await collectGarbage(pid);
  await sleep(500);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const mb = (bytes) => Math.round(bytes / 104857.6) / 10;
  const p = await fetch(`http://127.0.0.1:${SERVICE_PORT}/stats`).then((r) => r.json()).then((s) => s.process, () => undefined);
  return {
    rssMb: Math.round(rssKb / 102.4) / 10,
    ...nativeShare(pid),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    ...(p ? { heapTotalMb: mb(p.heapTotalBytes), heapUsedMb: mb(p.heapUsedBytes), externalMb: mb(p.externalBytes) } : {}),
  };
}

async function killService() {
  const p = current;
  p.killedByUs = true;
  p.child.kill('SIGKILL');
  await new Promise((r) => (p.exit ? r() : p.child.once('exit', r)));
  await startService();
}

async function script(name) {
  await execFileP('bash', [join(REPO, 'docker/asterisk', name)], { cwd: REPO, timeout: 300_000, maxBuffer: 16 << 20 });
}

// ---- the run --------------------------------------------------------------------------------------

const calls = []; // { i, kind, from, callId, start, end, code, tail }
const callers = []; // each SIPp process that placed calls: { kind, tag, calls, cpuSeconds, exit }
const loads = new Set(); // the SIPp processes placing calls now, to stop them if the run fails
const asteriskDown = []; // [from, to] windows: a call overlapping one may be cut
const kills = [];
let stopLoad = false;

const kindOf = (i) => (Math.abs(i) % 2 === 0 ? 'queue' : 'route');
const numberOf = (i) => `+8190${String(10_000_000 + (i < 0 ? 5_000_000 - i : i))}`;

/**
 * Places the calls `indices` (one caller number each) at RATE calls/s in all: each kind from one
 * SIPp process at its share of the rate. `done` resolves once both processes have exited, with
 * every call they placed in `into` and how it ended.
 */
function load(indices, into, tag) {
  const env = readAsteriskEnv();
  const runs = [];
  for (const [kind, c] of Object.entries(CALLERS)) {
    const mine = indices.filter((i) => kindOf(i) === kind);
    if (!mine.length) continue;
    const rate = (RATE * mine.length) / indices.length;
    const run = placeCalls({
      ...c,
      // the kinds take turns, one call every 1/RATE s as a single stream would, not two at once
      delayMs: runs.length * (1000 / RATE),
      callers: mine.map((i) => ({ from: numberOf(i), name: `Chaos ${i}` })),
      rate,
      dir: join(dir, `sipp-${tag}-${kind}`),
      remote: `${env.sipHost}:${env.sipPort}`,
      // the longest call (a caller put back in the queue waits for its BYE 20 s) and then some
      timeoutS: Math.ceil(mine.length / rate) + 90,
    });
    runs.push({ kind, mine, run });
  }
  const handle = {
    stop: () => runs.forEach(({ run }) => run.stop()),
    kill: () => runs.forEach(({ run }) => run.kill()),
  };
  loads.add(handle);
  handle.done = Promise.all(
    runs.map(async ({ kind, mine, run }) => {
      const r = await run.done;
      const byNumber = new Map(mine.map((i) => [numberOf(i), i]));
      for (const c of r.calls) into.push({ i: byNumber.get(c.from), kind, ...c });
      callers.push({ kind, tag, calls: r.calls.length, cpuSeconds: r.cpuSeconds, exit: r.exit, stderr: r.stderr });
    }),
  ).then(() => {
    loads.delete(handle);
    into.sort((a, b) => a.start - b.start);
  });
  return handle;
}

async function main() {
  log(`dir ${dir}; ${MINUTES} min at ${RATE} calls/s, kills every ${KILL_MIN / 1000}-${KILL_MAX / 1000} s, ${AST_RESTARTS} Asterisk restarts`);
  asterisk = watchAsterisk(readAsteriskEnv());
  await startService();
  // The process measured before is the second one, after the same warm-up as the one measured
  // after: the first also pays for what outlives it (the TTS cache on disk), which would make any
  // later process look smaller.
  await warmUp(0);
  current.killedByUs = true;
  current.child.kill('SIGTERM');
  await new Promise((r) => (current.exit ? r() : current.child.once('exit', r)));
  await startService();
  await warmUp(1);
  // both measured idle for the same time: longer than undici's keep-alive (4 s), so no pooled socket
  // to a stand-in is counted on one side only, and long enough for V8's idle-time GC to run
  await sleep(IDLE_BEFORE_MEASURE_MS);
  const before = await resources(current.pid);
  log(`before: ${JSON.stringify(before)}`);

  const runStart = Date.now();
  runStartAbs = runStart;
  const running = load(Array.from({ length: PLANNED }, (_, i) => i), calls, 'run');

  const killer = (async () => {
    for (;;) {
      const at = Date.now() + KILL_MIN + Math.random() * (KILL_MAX - KILL_MIN);
      while (Date.now() < at && !stopLoad) await sleep(200);
      if (Date.now() - runStart > RUN_MS - 10_000 || stopLoad) return;
      const killedAt = Date.now();
      await killService();
      kills.push({ at: killedAt - runStart, healthyAfterMs: Date.now() - killedAt });
      log(`killed and restarted the service (${kills.length}), healthy after ${Date.now() - killedAt} ms`);
    }
  })();
  const restarter = (async () => {
    for (let r = 1; r <= AST_RESTARTS; r++) {
      const target = runStart + (RUN_MS * r) / (AST_RESTARTS + 1);
      await sleep(Math.max(0, target - Date.now()));
      const from = Date.now();
      await script('down.sh');
      await script('up.sh');
      const to = Date.now();
      asteriskDown.push([from, to]);
      log(`restarted Asterisk (${r}) in ${to - from} ms`);
    }
  })();

  await sleep(RUN_MS);
  stopLoad = true;
  // the callers have placed their last call by now, unless they fell behind: what they have not
  // placed yet is left out (placed against planned in the report), and the run stays bounded
  await sleep(2000);
  running.stop();
  await restarter;
  log('load stopped; waiting for the calls under way to end');
  await running.done;
  log(`${calls.length} calls placed of ${PLANNED} planned`);
  await killer;
  await waitHealthy(60_000);

  sms.release();
  await drainQueues();
  await warmUp(2);
  const backlog = await drainQueues();
  await sleep(IDLE_BEFORE_MEASURE_MS);
  const lastProcess = await resources(current.pid);
  log(`last process: ${JSON.stringify(lastProcess)}`);
  // What the checks compare with "before" is a process started after the run, on the store the run
  // left, with the same start and warm-up as the one measured before: what differs then is what the
  // run left behind (the store's size, files, the PBX's state), which is what would make a service
  // grow run after run. The last process of the run is not a fair "after": it lived only since the
  // last kill (20-40 s) and started into a backlog (the calls its predecessor left in Stasis, the
  // outbox and hooks it had left), and what such a burst leaves is memory V8 and malloc keep for
  // the next one: its anonymous memory outside V8's heap and malloc's main arena, which malloc_trim()
  // does not return, was 3 MB over the first process's in one short run and 10 MB in the next, with
  // the same calls. Its figures are reported beside, not checked.
  const last = current;
  last.killedByUs = true;
  last.child.kill('SIGTERM');
  await new Promise((r) => (last.exit ? r() : last.child.once('exit', r)));
  if (last.exit.code !== 0) last.badLines.push(`the last process of the run exited with ${JSON.stringify(last.exit)} on SIGTERM`);
  await startService();
  await warmUp(3);
  await drainQueues();
  await sleep(IDLE_BEFORE_MEASURE_MS);
  const after = await resources(current.pid);
  log(`after: ${JSON.stringify(after)}`);
  current.child.kill('SIGTERM');
  await new Promise((r) => (current.exit ? r() : current.child.once('exit', r)));
  return { before, after, lastProcess, backlog };
}

/** 15 s of the run's load with nothing breaking; `round` keeps each warm-up's callers apart. */
async function warmUp(round) {
  const n = 15 * RATE;
  await load(Array.from({ length: n }, (_, w) => -1 - round * n - w), [], `warm-up-${round}`).done;
}

/** Until the outbox and the hook queue are empty (a hung request ends at its 2 s timeout), at most 2 min. */
async function drainQueues() {
  const end = Date.now() + 120_000;
  for (;;) {
    const backlog = await pending();
    if ((backlog.sms === 0 && backlog.hooks === 0) || Date.now() > end) return backlog;
    await sleep(500);
  }
}

async function pending() {
  const db = new Database(join(dir, 'store.db'), { readonly: true, fileMustExist: true });
  try {
    const smsN = db.prepare("SELECT count(*) n FROM sms_messages WHERE status IN ('pending','sending')").get().n;
    const hooksN = db.prepare("SELECT count(*) n FROM hook_runs WHERE status IN ('pending','sending')").get().n;
    return { sms: smsN, hooks: hooksN };
  } finally {
    db.close();
  }
}

function report({ before, after, lastProcess, backlog }) {
  const db = new Database(join(dir, 'store.db'), { readonly: true });
  const messages = db.prepare('SELECT id, call_id, text, status FROM sms_messages').all();
  const runs = db.prepare('SELECT id, status, event FROM hook_runs').all();
  db.close();

  const cutBy = (c) => asteriskDown.some(([from, to]) => c.start <= to + 2000 && (c.end ?? Infinity) >= from);
  const failed = calls.filter((c) => c.code !== 0);
  const failedCut = failed.filter(cutBy);
  // put back in the queue by the dialplan's fallback (no service took the #): waiting there, not lost
  const toFallback = (c) => (asterisk.byCaller.get(c.from) ?? []).length > 0;
  const inFallback = failed.filter((c) => !cutBy(c) && toFallback(c));
  const failedOther = failed.filter((c) => !cutBy(c) && !toFallback(c));
  // from the kill until a second after the new process was healthy: a call that arrived while no
  // service was up (or while the new one was connecting) overlaps it as much as one that was cut
  const killWindows = kills.map((k) => [runStartAbs + k.at, runStartAbs + k.at + k.healthyAfterMs + 1000]);
  const nearKill = (c) => killWindows.some(([from, to]) => c.start <= to && (c.end ?? Infinity) >= from);

  const deliveredBy = new Map();
  for (const d of sms.delivered) deliveredBy.set(d.message, (deliveredBy.get(d.message) ?? 0) + 1);
  const sent = messages.filter((m) => m.status === 'sent');
  const notDelivered = sent.filter((m) => !deliveredBy.get(m.text));
  const duplicates = messages.filter((m) => (deliveredBy.get(m.text) ?? 0) > 1).map((m) => ({ text: m.text, times: deliveredBy.get(m.text), status: m.status }));
  const acceptedTexts = new Set(messages.map((m) => m.text));
  const strayDeliveries = [...deliveredBy.keys()].filter((t) => !acceptedTexts.has(t));
  const smsStatus = count(messages.map((m) => m.status));
  const runStatus = count(runs.map((r) => r.status));
  const unfinishedRuns = runs.filter((r) => r.status === 'pending' || r.status === 'sending');
  const runsNotHeard = runs.filter((r) => r.status === 'ok' && !hookHits.get(r.id));
  const hookDuplicates = runs.filter((r) => (hookHits.get(r.id) ?? 0) > 1).length;

  const unexpectedExits = processes.filter((p) => p.exit && !p.killedByUs && p !== current);
  const lastExit = current.exit;
  const badLines = processes.flatMap((p) => p.badLines);
  const stderrs = processes.map((p) => p.stderr).filter((s) => /unhandled|uncaught|Error/i.test(s));
  const rssGrowth = (after.rssMb - before.rssMb) / before.rssMb;
  const fdGrowth = (after.fds - before.fds) / before.fds;

  const checks = {
    // the load the run says it put on the service, not a share of it: callers that fall behind
    // (a saturated machine) make every other check easier to pass
    'the callers placed the planned calls (at least 99 %)': calls.length >= 0.99 * PLANNED,
    'every call ended normally (but those an Asterisk restart cut)': failedOther.length === 0,
    'every call that no kill or restart overlapped ended normally': failedOther.filter((c) => !nearKill(c)).length === 0,
    'every accepted SMS delivered at least once': notDelivered.length === 0 && (smsStatus.pending ?? 0) + (smsStatus.sending ?? 0) === 0,
    'no SMS delivered that the outbox did not accept': strayDeliveries.length === 0,
    'every hook run reached an end state': unfinishedRuns.length === 0 && runsNotHeard.length === 0,
    'no unhandled rejection, uncaught exception, fatal line or unexpected exit': badLines.length === 0 && stderrs.length === 0 && unexpectedExits.length === 0 && lastExit?.code === 0,
    'RSS after within 10 % of before': Math.abs(rssGrowth) <= 0.1,
    'open file descriptors after within 10 % of before': Math.abs(fdGrowth) <= 0.1,
  };
  return {
    when: new Date(t0).toISOString(),
    options: { minutes: MINUTES, rate: RATE, killEverySeconds: [KILL_MIN / 1000, KILL_MAX / 1000], asteriskRestarts: AST_RESTARTS },
    calls: {
      planned: PLANNED,
      placed: calls.length,
      byKind: count(calls.map((c) => c.kind)),
      endedNormally: calls.length - failed.length,
      cutByAsteriskRestart: failedCut.length,
      // callers the fallback took (back into the queue): their SIPp caller waits there until its timeout
      sentToFallback: calls.filter(toFallback).length,
      waitingInFallbackAtTimeout: inFallback.length,
      fallbackByKind: count(calls.filter(toFallback).map((c) => c.kind)),
      failedOtherwise: failedOther.length,
      failedOtherwiseNearAKill: failedOther.filter(nearKill).length,
      failedOtherwiseByKind: count(failedOther.map((c) => c.kind)),
      // when it ran, against the kills and restarts listed below (ms from the run's start)
      examples: failedOther.slice(0, 8).map((c) => ({ kind: c.kind, from: c.from, callId: c.callId, code: c.code, startMs: c.start - runStartAbs, endMs: (c.end ?? NaN) - runStartAbs, tail: c.tail })),
    },
    // what placing the calls cost: the SIPp processes' CPU time (warm-ups included), sampled each second
    callers: {
      processes: callers.length,
      calls: callers.reduce((n, c) => n + c.calls, 0),
      cpuSeconds: round3(callers.reduce((s, c) => s + c.cpuSeconds, 0)),
      cpuMsPerCall: round3((callers.reduce((s, c) => s + c.cpuSeconds, 0) * 1000) / Math.max(1, callers.reduce((n, c) => n + c.calls, 0))),
      exits: callers.map((c) => ({ kind: c.kind, tag: c.tag, calls: c.calls, cpuSeconds: round3(c.cpuSeconds), code: c.exit.code, signal: c.exit.signal, ...(c.exit.code ? { stderr: c.stderr.slice(0, 300) } : {}) })),
    },
    kills,
    asteriskRestarts: asteriskDown.map(([from, to]) => ({ at: from - runStartAbs, ms: to - from })),
    routeAnswers,
    sms: {
      accepted: messages.length,
      status: smsStatus,
      standInRequests: sms.requests.length,
      delivered: sms.delivered.length,
      sentButNotDelivered: notDelivered.length,
      duplicates: duplicates.length,
      duplicateExamples: duplicates.slice(0, 5),
      strayDeliveries: strayDeliveries.length,
      backlogAtEnd: backlog.sms,
    },
    hooks: { runs: runs.length, status: runStatus, unfinished: unfinishedRuns.length, okButNotReceived: runsNotHeard.length, receivedTwiceOrMore: hookDuplicates, backlogAtEnd: backlog.hooks },
    service: {
      processes: processes.length,
      unexpectedExits: unexpectedExits.map((p) => p.exit),
      lastExit,
      badLines: badLines.slice(0, 10),
      stderr: stderrs.map((s) => s.slice(0, 500)),
      before,
      after,
      lastProcess,
      lastProcessRssGrowthPercent: Math.round(((lastProcess.rssMb - before.rssMb) / before.rssMb) * 1000) / 10,
      rssGrowthPercent: Math.round(rssGrowth * 1000) / 10,
      fdGrowthPercent: Math.round(fdGrowth * 1000) / 10,
    },
    checks,
    ok: Object.values(checks).every(Boolean),
  };
}

/**
 * For each failed call: every line that names its channels, from the logs of the service processes
 * alive around it and from Asterisk's log, so that a report says what each side did with it.
 */
async function explain(failedCalls, env) {
  if (!failedCalls.length) return [];
  await Promise.all(processes.map((p) => (p.out.writableFinished ? undefined : new Promise((r) => p.out.once('finish', r)))));
  const out = [];
  for (const c of failedCalls) {
    const channels = (asterisk.channelsByCaller.get(c.from) ?? []).filter((ch) => ch.at >= c.start - 2000);
    const from = c.start - 2000;
    const to = (c.end ?? Date.now()) + 2000;
    const ids = channels.map((ch) => new RegExp(`${ch.id.replace('.', '\\.')}(?![0-9])`));
    const service = [];
    for (const [n, p] of processes.entries()) {
      if (p.startedAt > to || (p.exitedAt ?? Infinity) < from) continue;
      for await (const line of createInterface({ input: createReadStream(p.logFile) })) {
        if (ids.some((re) => re.test(line))) service.push(`#${n + 1} pid ${p.pid}: ${line.slice(0, 600)}`);
      }
    }
    out.push({ from: c.from, channels, serviceLog: service, asteriskLog: await asteriskLines(env.logFile, channels, from, to) });
  }
  return out;
}

/** Lines of Asterisk's log within [from, to] that name one of the channels, or carry the call id tag ([C-…]) of one that does. */
async function asteriskLines(file, channels, from, to) {
  if (!existsSync(file) || !channels.length) return [];
  const names = channels.map((ch) => ch.name).filter(Boolean);
  const tags = new Set();
  const lines = [];
  for await (const line of createInterface({ input: createReadStream(file) })) {
    const m = /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\]/.exec(line);
    if (!m) continue;
    const at = new Date(`${m[1]}T${m[2]}`).getTime();
    if (at < from || at > to) continue;
    const tag = /\[(C-[0-9a-f]+)\]/.exec(line)?.[1];
    if (names.some((name) => line.includes(name))) {
      if (tag) tags.add(tag);
      lines.push(line);
    } else if (tag && tags.has(tag)) lines.push(line);
  }
  return lines.map((l) => l.slice(0, 400));
}

function round3(v) {
  return Math.round(v * 1000) / 1000;
}

function count(xs) {
  const out = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

function markdown(r) {
  const lines = [
    `# Chaos run ${r.when}`,
    '',
    `${r.options.minutes} min at ${r.options.rate} calls/s; service SIGKILLed every ${r.options.killEverySeconds.join('-')} s (${r.kills.length} times); Asterisk restarted ${r.asteriskRestarts.length} times; SMS provider 10 % 500, 2 % hang.`,
    '',
    '| check | result |',
    '|---|---|',
    ...Object.entries(r.checks).map(([k, v]) => `| ${k} | ${v ? 'pass' : '**FAIL**'} |`),
    '',
    `- calls: ${r.calls.placed} placed of ${r.calls.planned} planned (${JSON.stringify(r.calls.byKind)}), ${r.calls.endedNormally} ended normally, ${r.calls.cutByAsteriskRestart} cut by an Asterisk restart, ${r.calls.sentToFallback} sent to the dialplan's fallback (${JSON.stringify(r.calls.fallbackByKind)}; ${r.calls.waitingInFallbackAtTimeout} of them back in the queue until SIPp's timeout), ${r.calls.failedOtherwise} failed otherwise (${r.calls.failedOtherwiseNearAKill} of them spanning a kill)`,
    `- callers: ${r.callers.processes} SIPp processes placed ${r.callers.calls} calls (warm-ups included) with ${r.callers.cpuSeconds} CPU-s, ${r.callers.cpuMsPerCall} ms per call`,
    `- route API answers: ${JSON.stringify(r.routeAnswers)}`,
    `- SMS: ${r.sms.accepted} accepted (${JSON.stringify(r.sms.status)}), ${r.sms.standInRequests} requests to the stand-in, ${r.sms.delivered} delivered, ${r.sms.duplicates} delivered twice or more (the at-least-once window), ${r.sms.sentButNotDelivered} sent but not delivered, ${r.sms.strayDeliveries} stray`,
    `- hook runs: ${r.hooks.runs} (${JSON.stringify(r.hooks.status)}), ${r.hooks.unfinished} unfinished, ${r.hooks.receivedTwiceOrMore} received twice or more`,
    `- service: ${r.service.processes} processes; RSS ${r.service.before.rssMb} → ${r.service.after.rssMb} MB (${r.service.rssGrowthPercent} %), fds ${r.service.before.fds} → ${r.service.after.fds} (${r.service.fdGrowthPercent} %); V8 heap total ${r.service.before.heapTotalMb} → ${r.service.after.heapTotalMb} MB, used ${r.service.before.heapUsedMb} → ${r.service.after.heapUsedMb} MB, external ${r.service.before.externalMb} → ${r.service.after.externalMb} MB; anonymous ${r.service.before.rssAnonMb} → ${r.service.after.rssAnonMb} MB, of it malloc's main arena ${r.service.before.mallocMainArenaMb} → ${r.service.after.mallocMainArenaMb} MB (after: a process started after the run with the same warm-up as before)`,
    `- the run's last process, after the same warm-up (not checked): RSS ${r.service.lastProcess.rssMb} MB (${r.service.lastProcessRssGrowthPercent} %), fds ${r.service.lastProcess.fds}, V8 heap used ${r.service.lastProcess.heapUsedMb} MB, anonymous ${r.service.lastProcess.rssAnonMb} MB, malloc's main arena ${r.service.lastProcess.mallocMainArenaMb} MB`,
    '',
    ...r.calls.examples.flatMap((e) => [
      `## Failed call ${e.from} (${e.kind}, ${e.startMs}-${e.endMs} ms, exit ${e.code}; channels ${(e.channels ?? []).map((ch) => `${ch.id} ${ch.name}`).join(', ') || 'not seen by AMI'})`,
      '',
      'Service log (every process alive around it):',
      '```',
      ...(e.serviceLog ?? []).slice(0, 60),
      '```',
      "Asterisk's log:",
      '```',
      ...(e.asteriskLog ?? []).slice(0, 80),
      '```',
      '',
    ]),
  ];
  return lines.join('\n');
}

let runStartAbs = 0;
let exitCode = 0;
let keepDir = opt['keep-dir'];
try {
  const measured = await main();
  const r = report(measured);
  const failedOther = r.calls.examples.map((e) => calls.find((c) => c.from === e.from));
  const explained = await explain(failedOther, readAsteriskEnv());
  r.calls.examples.forEach((e, k) => Object.assign(e, explained[k] ?? {}));
  for (const e of explained) {
    process.stderr.write(`\n--- failed call ${e.from}: channels ${JSON.stringify(e.channels)}\n-- service:\n${e.serviceLog.join('\n')}\n-- asterisk:\n${e.asteriskLog.join('\n')}\n`);
  }
  keepDir = opt['keep-dir'] || !r.ok;
  const stamp = new Date(t0).toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const out = opt.out ?? join(REPO, 'bench/results', `chaos-${stamp}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(out.replace(/\.json$/, '.md'), markdown(r));
  process.stdout.write(markdown(r));
  log(`written ${out}`);
  if (opt.assert && !r.ok) exitCode = 1;
} catch (e) {
  log(`chaos run failed: ${e.stack ?? e}`);
  exitCode = 2;
} finally {
  stopLoad = true;
  for (const l of loads) l.kill();
  clearInterval(topUpTimer);
  current?.child.kill('SIGKILL');
  asterisk?.close();
  sms.release();
  await sms.close();
  await routeApi.close();
  hookServer.close();
  // Asterisk is left running (up.sh), as the tests leave it
  if (keepDir) log(`run dir kept (the service logs, the store): ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
