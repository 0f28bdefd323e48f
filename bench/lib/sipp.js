// One SIPp run of npm run bench and what it measured: sipp's final statistics line (-trace_stat)
// and every INVITE→200 response time (-trace_rtt), read from the files it writes in `dir`.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Places `calls` calls at `rate` calls/s to extension `service`. Every receive in the scenarios
 * has its own timeout; `-timeout` ends sipp as a whole even if Asterisk stops answering, and a
 * kill a little later covers sipp itself hanging.
 */
export function runSipp(o) {
  mkdirSync(o.dir, { recursive: true });
  const timeoutS = o.timeoutS ?? Math.ceil(o.calls / o.rate) + 20;
  const args = [
    '-sf', o.scenario,
    '-s', String(o.service),
    '-inf', o.injection,
    '-i', '127.0.0.1', '-p', String(o.localPort ?? 5070),
    '-mi', '127.0.0.1', '-mp', String(o.mediaPort ?? 16000),
    '-r', String(o.rate), '-rp', '1000',
    '-m', String(o.calls),
    // room for calls to back up when Asterisk falls behind, so saturation shows as slow calls and
    // retransmissions rather than as sipp refusing to place them
    '-l', String(o.limit ?? Math.max(200, o.rate * 10)),
    ...(o.pauseMs !== undefined ? ['-d', String(o.pauseMs)] : []),
    '-timeout', `${timeoutS}s`, '-timeout_error',
    '-nostdin',
    '-trace_stat', '-stf', join(o.dir, 'stat.csv'), '-fd', '1',
    '-trace_rtt', '-rtt_freq', '1',
    ...(o.traceMsg ? ['-trace_msg', '-message_file', join(o.dir, 'messages.log')] : []),
    '-trace_err', '-error_file', join(o.dir, 'errors.log'),
    o.remote ?? '127.0.0.1:5060',
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // o.cpu: run SIPp on that CPU only (--pin)
    const child = o.cpu === undefined
      ? spawn('sipp', args, { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('taskset', ['-c', String(o.cpu), 'sipp', ...args], { cwd: o.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => {
      if (stderr.length < 20_000) stderr += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 30) * 1000);
    child.on('error', (e) => {
      clearTimeout(killer);
      reject(new Error(`cannot run sipp (Debian package sip-tester): ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(killer);
      try {
        resolve({ code, wallS: (Date.now() - started) / 1000, ...readStats(o.dir), responseTimesMs: readRtt(o.dir), stderr: stderr.slice(0, 2000) });
      } catch (e) {
        reject(new Error(`sipp (exit ${code}) left no statistics: ${e.message}\n${stderr.slice(0, 2000)}`));
      }
    });
  });
}

/** The last line of sipp's statistics file, cumulative figures. */
function readStats(dir) {
  const lines = readFileSync(join(dir, 'stat.csv'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const header = lines[0].split(';');
  const last = lines[lines.length - 1].split(';');
  const v = (name) => last[header.indexOf(name)] ?? '';
  const n = (name) => Number(v(name)) || 0;
  // "2026-11-21<TAB>04:18:31.470522<TAB>1795234711.470522": the epoch seconds come last
  const epoch = (name) => Number(v(name).split('\t').pop());
  const elapsedS = epoch('CurrentTime') - epoch('StartTime');
  return {
    created: n('TotalCallCreated'),
    successful: n('SuccessfulCall(C)'),
    failed: n('FailedCall(C)'),
    retransmissions: n('Retransmissions(C)'),
    timeouts: n('FailedTimeoutOnRecv(C)'),
    unexpected: n('FailedUnexpectedMessage(C)'),
    deadCallMsgs: n('DeadCallMsgs(C)'),
    elapsedS: Number.isFinite(elapsedS) ? elapsedS : 0,
  };
}

function readRtt(dir) {
  const file = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  if (!file) return [];
  const out = [];
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    const [, ms, rtd] = line.split(';');
    if (rtd !== undefined && rtd.trim() === '1' && ms !== '') out.push(Number(ms));
  }
  return out;
}

/**
 * From a -trace_msg file: when each INFO (the caller's #) was sent, by the caller's number.
 * sipp writes local time with microseconds; a date-time string without a zone is local to
 * JavaScript too.
 */
export function infoSendTimes(dir) {
  const text = readFileSync(join(dir, 'messages.log'), 'utf8');
  const out = new Map();
  for (const block of text.split(/^-{20,} /m)) {
    const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})\.(\d{3})\d*\s*\nUDP message sent[^\n]*\n\s*\nINFO [\s\S]*?^From:[^<]*<sip:([^@>]+)@/m.exec(block);
    if (m) out.set(m[4], new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime());
  }
  return out;
}

/** A -inf file: SEQUENTIAL, one caller number a line; sipp loops over it. */
export function injectionFile(n, prefix = '+81901') {
  const lines = ['SEQUENTIAL'];
  for (let i = 0; i < n; i++) lines.push(`${prefix}${String(i).padStart(7, '0')};`);
  return lines.join('\n') + '\n';
}

export function percentile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
