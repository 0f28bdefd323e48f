import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { REPO_ROOT, readAsteriskEnv } from './asterisk.js';

export interface SippOptions {
  /** A scenario name from test/sipp (e.g. 'queue_pound_2833') or a path to an XML file. */
  scenario: string;
  /** The number dialled, i.e. the Request-URI user ([service]). */
  service: string;
  /** From user, which becomes CALLERID(num): '+15551234567', 'anonymous', 'tester-info'... */
  from: string;
  /** From display name, which becomes CALLERID(name). */
  fromName: string;
  /** Local SIP port; give each concurrent caller its own. Its RTP uses localPort + 10930 (16000 for 5070). */
  localPort?: number;
  /** Asterisk's SIP address; defaults to the one in asterisk.env, else 127.0.0.1:5060. */
  remote?: string;
  /** sipp is killed after this long and the result reports code null. */
  timeoutMs: number;
}

export interface SippResult {
  /** sipp's exit code: 0 every call succeeded, 1 a call failed, null killed on timeout. */
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

function scenarioPath(scenario: string): string {
  if (isAbsolute(scenario) || scenario.endsWith('.xml')) return scenario;
  return join(REPO_ROOT, 'test/sipp', `${scenario}.xml`);
}

function defaultRemote(): string {
  try {
    const env = readAsteriskEnv();
    return `${env.sipHost}:${env.sipPort}`;
  } catch {
    return '127.0.0.1:5060';
  }
}

/** Places one call with SIPp and resolves when sipp exits (or is killed at timeoutMs). */
export function runSipp(opts: SippOptions): Promise<SippResult> {
  const file = scenarioPath(opts.scenario);
  if (!existsSync(file)) return Promise.reject(new Error(`SIPp scenario not found: ${file}`));
  const localPort = opts.localPort ?? 5070;
  // Asterisk's RTP range ends below 16000 (rtp.conf), so the callers' media ports never collide with it
  const mediaPort = localPort + 10_930;
  const args = [
    '-sf', file,
    '-s', opts.service,
    '-set', 'from', opts.from,
    '-set', 'name', opts.fromName,
    '-i', '127.0.0.1', '-p', String(localPort),
    '-mi', '127.0.0.1', '-mp', String(mediaPort),
    '-m', '1', '-l', '1',
    // sipp's own watchdog, in case the kill below never comes
    '-timeout', `${Math.ceil(opts.timeoutMs / 1000) + 5}s`, '-timeout_error',
    '-nostdin',
    opts.remote ?? defaultRemote(),
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // sipp may write *_errors.log or screen files in its working directory: keep them out of the repo
    const child = spawn('sipp', args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run sipp (package sip-tester): ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}
