// Many calls from one long-lived SIPp process, and how each one of them ended.
//
// A sipp process per call costs about 0.3 CPU-s (60 % of it in the kernel: exec, pcap and socket
// setup, teardown); at 20 calls/s that alone takes most of a 2-core machine, and the PBX and the
// service under test starve. One process placing the calls at a rate (-r/-rp, -m) costs a fraction
// of that, but its exit code and summary only count: the outcome of each call comes from the
// scenario's own <log> lines (-trace_logs) and sipp's error log (-trace_err) instead.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds } from './proc.js';

/**
 * Places one call per caller ({ from, name }: [field0] and [field1] of the scenario) at `rate`
 * calls/s to extension `service`. The scenario must log "[timestamp] start [field0] [call_id]"
 * before its INVITE and "[timestamp] end [field0] [call_id]" once the call is over as it should.
 *
 * Starts sipp after `delayMs` (0). Returns { stop(), kill(), done }: stop() asks sipp to place no
 * more calls and to exit once the calls under way have ended (SIGUSR1), kill() ends it at once;
 * done resolves to { exit, cpuSeconds, stderr, calls }, a call being
 * { from, callId, start, end, code, tail }: code 0 it logged its end, 1 sipp's error log names it
 * (tail: what it says, end: when), null neither (tail says so, end: its start, as nothing later is
 * known of it). A call sipp never placed is not in `calls`: the caller compares their number with
 * what it planned.
 */
export function placeCalls(o) {
  mkdirSync(o.dir, { recursive: true });
  const injection = join(o.dir, 'callers.csv');
  // SEQUENTIAL: call n takes line n, so each caller is used once while -m is the number of lines
  writeFileSync(injection, ['SEQUENTIAL', ...o.callers.map((c) => `${c.from};${c.name};`)].join('\n') + '\n');
  const logFile = join(o.dir, 'calls.log');
  const errorFile = join(o.dir, 'errors.log');
  const args = [
    '-sf', o.scenario,
    '-s', String(o.service),
    '-inf', injection,
    '-i', '127.0.0.1', '-p', String(o.localPort),
    // sipp's control socket otherwise takes 8888 or the next free port up, maybe another caller's
    '-cp', String(o.localPort + 2),
    '-mi', '127.0.0.1', '-mp', String(o.mediaPort),
    '-r', String(o.rate), '-rp', '1000',
    '-m', String(o.callers.length),
    // room for calls to back up (a caller the fallback put back in the queue waits ~25 s), so that
    // a slow PBX shows as slow or failed calls, not as calls sipp never placed
    '-l', String(o.limit ?? Math.max(500, Math.ceil(o.rate * 60))),
    '-timeout', `${o.timeoutS}s`,
    '-nostdin',
    '-trace_logs', '-log_file', logFile,
    '-trace_err', '-error_file', errorFile,
    o.remote,
  ];
  let child;
  let exited = false;
  let cancelled = false;
  const done = new Promise((resolve, reject) => {
    const launch = () => {
      const started = Date.now();
      if (cancelled) return resolve({ exit: { code: null, signal: null, startedAt: started, endedAt: started }, cpuSeconds: 0, stderr: '', calls: [] });
      // sipp may write screen or other files in its working directory: keep them in its own
      child = spawn('sipp', args, { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d) => {
        if (stderr.length < 20_000) stderr += d;
      });
      // its CPU time, sampled while it lives: it is gone from /proc once it has been reaped, so the
      // figure misses at most the last second of a process that runs for minutes
      let cpu = 0;
      const sampler = setInterval(() => {
        const s = cpuSeconds(child.pid);
        if (s !== undefined) cpu = s;
      }, 1000);
      // sipp's -timeout ends it; this covers sipp itself hanging
      const killer = setTimeout(() => child.kill('SIGKILL'), (o.timeoutS + 30) * 1000);
      child.on('error', (e) => {
        clearInterval(sampler);
        clearTimeout(killer);
        reject(new Error(`cannot run sipp (package sip-tester): ${e.message}`));
      });
      child.on('close', (code, signal) => {
        exited = true;
        clearInterval(sampler);
        clearTimeout(killer);
        const exit = { code, signal, startedAt: started, endedAt: Date.now() };
        resolve({ exit, cpuSeconds: cpu, stderr: stderr.slice(0, 2000), calls: outcomes(logFile, errorFile, exit) });
      });
    };
    if (o.delayMs) setTimeout(launch, o.delayMs);
    else launch();
  });
  return {
    stop() {
      if (!child) cancelled = true;
      else if (!exited) child.kill('SIGUSR1');
    },
    kill() {
      if (!child) cancelled = true;
      else if (!exited) child.kill('SIGKILL');
    },
    done,
  };
}

/** sipp's "[timestamp]": date, time and epoch seconds with microseconds, tab-separated. */
const STAMP = /(\d{4}-\d\d-\d\d)\t(\d\d:\d\d:\d\d\.\d+)\t(\d+\.\d+)/;

const LOG_LINE = new RegExp(`^${STAMP.source} (start|end) (\\S+) (\\S+)$`);
const ERROR_ENTRY = new RegExp(`${STAMP.source}: `, 'g');

/** Each call the log says was placed, with how it ended. */
export function outcomes(logFile, errorFile, exit) {
  const calls = new Map();
  const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  for (const line of text.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m) continue;
    const at = Math.round(Number(m[3]) * 1000);
    const [, , , , what, from, callId] = m;
    if (what === 'start') calls.set(callId, { from, callId, start: at, end: undefined, code: undefined, tail: undefined });
    else {
      const c = calls.get(callId);
      if (c) Object.assign(c, { end: at, code: 0 });
    }
  }
  const errors = errorEntries(errorFile);
  for (const c of calls.values()) {
    if (c.code === 0) continue;
    // an entry about a call that had already ended ("Dead call …") says nothing of how it ended
    const own = (errors.get(c.callId) ?? []).filter((e) => !e.text.startsWith('Dead call'));
    if (own.length) Object.assign(c, { code: 1, end: own[0].at, tail: own.slice(0, 2).map((e) => e.text).join('\n').slice(0, 1200) });
    // when it ended is not known: its start is the only time it surely overlaps, so that nothing
    // that came later (a restart, a kill) can be taken for what ended it
    else Object.assign(c, { code: null, end: c.start, tail: `no end in sipp's call log and no error for it, end unknown (sipp exited ${JSON.stringify({ code: exit.code, signal: exit.signal })})` });
  }
  return [...calls.values()];
}

/**
 * sipp's error log, entry by entry, by the Call-ID each one names. Entries start with a
 * timestamp and may run over several lines (a whole unexpected message) or follow one another
 * on the same line.
 */
function errorEntries(file) {
  const out = new Map();
  if (!existsSync(file)) return out;
  const text = readFileSync(file, 'utf8');
  const starts = [...text.matchAll(ERROR_ENTRY)];
  for (const [k, m] of starts.entries()) {
    const body = text.slice(m.index + m[0].length, starts[k + 1]?.index ?? text.length).replace(/\r/g, '').trim();
    // "Call-Id: X, receive timeout…", "…unexpected message for Call-Id 'X'…", "…unexpected BYE for
    // call: X", "Dead call X …": the first Call-ID-shaped word ([call_id] is %u-%p@%s) of its first line
    const callId = /(\d+-\d+@[^\s',]+)/.exec(body.split('\n', 1)[0])?.[1];
    if (!callId) continue;
    if (!out.has(callId)) out.set(callId, []);
    out.get(callId).push({ at: Math.round(Number(m[3]) * 1000), text: body });
  }
  return out;
}
