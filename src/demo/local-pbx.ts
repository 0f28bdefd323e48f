/**
 * The local test PBX that docker/asterisk/up.sh provisions, seen from Node: its connection
 * details and a SIP caller (sipp). Used by the demo and the tests alike.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file sits two folders down, in src/demo or dist/demo). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Same default as docker/asterisk/up.sh; override both with ASTX_DIR. */
export function astxDir(): string {
  return process.env.ASTX_DIR ?? '/tmp/call-actions-asterisk';
}

export interface AsteriskEnv {
  ariUrl: string;
  ariUser: string;
  ariPass: string;
  ariApp: string;
  amiHost: string;
  amiPort: number;
  amiUser: string;
  amiPass: string;
  sipHost: string;
  sipPort: number;
  /** The chroot Asterisk runs in, as seen from the host. */
  root: string;
  /** Host path of the chroot's custom sounds dir: a file NAME.wav there plays as sound:custom/NAME. */
  soundsDir: string;
  /** Host path of Asterisk's messages.log (verbose dialplan trace, warnings, errors). */
  logFile: string;
  pid: number;
}

function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2] ?? '';
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    vars.set(m[1] ?? '', value);
  }
  return vars;
}

/** Reads $ASTX_DIR/asterisk.env, which up.sh writes once ARI answers. */
export function readAsteriskEnv(dir: string = astxDir()): AsteriskEnv {
  const file = join(dir, 'asterisk.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file} not found: is Asterisk up (bash docker/asterisk/up.sh)? ${(err as Error).message}`);
  }
  const vars = parseEnvFile(text);
  const get = (key: string): string => {
    const v = vars.get(key);
    if (v === undefined || v === '') throw new Error(`${file}: ${key} is missing`);
    return v;
  };
  const root = get('ASTERISK_ROOT');
  return {
    ariUrl: get('ARI_URL'),
    ariUser: get('ARI_USER'),
    ariPass: get('ARI_PASS'),
    ariApp: vars.get('ARI_APP') ?? 'call-actions',
    amiHost: get('AMI_HOST'),
    amiPort: Number(get('AMI_PORT')),
    amiUser: get('AMI_USER'),
    amiPass: get('AMI_PASS'),
    sipHost: vars.get('SIP_HOST') ?? '127.0.0.1',
    sipPort: Number(vars.get('SIP_PORT') ?? '5060'),
    root,
    soundsDir: vars.get('ASTERISK_SOUNDS_DIR') ?? join(root, 'usr/local/share/asterisk/sounds'),
    logFile: vars.get('ASTERISK_LOG') ?? join(root, 'var/log/asterisk/messages.log'),
    pid: Number(vars.get('ASTERISK_PID') ?? '0'),
  };
}


export interface SippOptions {
  /** A scenario name from test/sipp (e.g. 'queue_pound_2833') or a path to an XML file. */
  scenario: string;
  /** The number dialled, i.e. the Request-URI user ([service]). */
  service: string;
  /** From user, which becomes CALLERID(num): '+15551234567', 'anonymous', 'tester-info'... */
  from: string;
  /** From display name, which becomes CALLERID(name). */
  fromName: string;
  /** Further scenario variables (-set NAME VALUE), e.g. a header's value. */
  vars?: Readonly<Record<string, string>>;
  /** Local SIP port; give each concurrent caller its own. Its RTP uses localPort + 10930 (16000 for 5070). */
  localPort?: number;
  /** Asterisk's SIP address; defaults to the one in asterisk.env, else 127.0.0.1:5060. */
  remote?: string;
  /** sipp is killed after this long and the result reports code null. */
  timeoutMs: number;
  /** Kills sipp early (the result reports code null), e.g. when the test that placed the call is over. */
  signal?: AbortSignal;
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
    ...Object.entries(opts.vars ?? {}).flatMap(([k, v]) => ['-set', k, v]),
    '-i', '127.0.0.1', '-p', String(localPort),
    // sipp's control socket, which otherwise takes 8888 and, when that is busy, the next free port
    // up: with many callers at once it lands on another caller's SIP port (5200 + 4n in the chaos
    // run), and that caller's sipp exits 254 before its INVITE ("Unable to bind main socket")
    '-cp', String(localPort + 2),
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
    let killed = false;
    const kill = () => {
      killed = true;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(kill, opts.timeoutMs);
    opts.signal?.addEventListener('abort', kill, { once: true });
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
    };
    child.on('error', (err) => {
      done();
      reject(new Error(`cannot run sipp (package sip-tester): ${err.message}`));
    });
    child.on('close', (code) => {
      done();
      resolve({ code: killed ? null : code, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}
