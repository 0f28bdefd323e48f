import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AossmsStandIn } from '../standins/aossms.js';
import { REPO_ROOT, readAsteriskEnv } from './asterisk.js';
import { endAfterFile } from './leftovers.js';

/** One log line of the service, parsed (pino JSON). */
export type LogLine = Record<string, unknown> & { level: string; msg: string; time: number };

export interface RunningService {
  readonly url: string;
  readonly dir: string;
  readonly configFile: string;
  readonly lines: LogLine[];
  readonly stderr: string[];
  readonly child: ChildProcess;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /**
   * The lines once the service's stdout has been quiet for a moment: it writes its log in batches
   * (src/log.ts), so a line about what just happened may not have arrived yet.
   */
  settled(): Promise<LogLine[]>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A temp folder holding a config whose store and TTS cache live in it too. */
export function serviceDir(): string {
  return mkdtempSync(join(tmpdir(), 'call-actions-test-'));
}

/** The `asterisk:` and housekeeping sections every test config shares; stages and SMS are the test's. */
export function baseConfig(dir: string, port: number, extra: string): string {
  const env = readAsteriskEnv();
  return `asterisk:
  ari: { url: "${env.ariUrl}", user: "\${ARI_USER}", password: "\${ARI_PASSWORD}", app: call-actions, timeout: 3s }
  ami: { host: ${env.amiHost}, port: ${env.amiPort}, user: "\${AMI_USER}", secret: "\${AMI_SECRET}" }
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
log: { level: info }
tts: { cacheDir: ${join(dir, 'tts')} }
${extra}`;
}

export function serviceEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // a test with an Asterisk stand-in of its own (test/unit/ari-connect.test.ts) runs without the PBX
  let pbx: Record<string, string> = {};
  try {
    const env = readAsteriskEnv();
    pbx = { ARI_USER: env.ariUser, ARI_PASSWORD: env.ariPass, AMI_USER: env.amiUser, AMI_SECRET: env.amiPass };
  } catch {
    /* no local PBX */
  }
  return { ...process.env, ...pbx, ...extra };
}

/** What the tests' aossms provider sections read the stand-in's credentials from. */
export function aossmsEnv(provider: AossmsStandIn): Record<string, string> {
  return { AOS_TOKEN: provider.credentials.token, AOS_CLIENT_ID: provider.credentials.clientId, AOS_SMS_CODE: provider.credentials.smsCode };
}

/** startService() with baseConfig() around the test's own sections; a restart passes the first one's dir and port. */
export function startWithConfig(sections: string, opts: { dir?: string; port?: number; env?: Record<string, string> } = {}): Promise<RunningService> {
  const dir = opts.dir ?? serviceDir();
  const port = opts.port ?? freePort();
  return startService({ dir, port, env: opts.env, config: baseConfig(dir, port, sections) });
}

/** Starts `call-actions start` as its own process (so a test can SIGKILL it) and waits until /health is ok. */
export async function startService(opts: { dir: string; config: string; port: number; env?: Record<string, string>; healthy?: boolean }): Promise<RunningService> {
  const configFile = join(opts.dir, 'config.yaml');
  writeFileSync(configFile, opts.config);
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli.js'), 'start', '--config', configFile], {
    env: serviceEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let lastOutput = Date.now();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    lastOutput = Date.now();
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        stderr.push(`(not JSON on stdout) ${line}`);
      }
      for (const w of waiters) w();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
  const forget = endAfterFile(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).finally(forget);
  const url = `http://127.0.0.1:${opts.port}`;

  const service: RunningService = {
    url,
    dir: opts.dir,
    configFile,
    lines,
    stderr,
    child,
    waitForLog(pred, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}\n${stderr.join('')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async settled() {
      // a line logged just before this call is out within the logger's flush interval (100 ms);
      // bounded, for a service that never stops talking
      const quietMs = 200;
      const asked = Date.now();
      const deadline = asked + 5000;
      while (Date.now() - Math.max(lastOutput, asked) < quietMs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      return lines;
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
  if (opts.healthy !== false) await waitHealthy(url, 15_000, stderr);
  return service;
}

export async function waitHealthy(url: string, timeoutMs: number, stderr: string[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/health`);
      last = await res.text();
      if (res.status === 200) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`service not healthy within ${timeoutMs} ms: ${last}\n${stderr.join('')}`);
}

let nextPort = 18_000 + (process.pid % 1000) * 10;
/** A port for the service's HTTP endpoint (Asterisk fetches TTS audio from it). */
export function freePort(): number {
  return nextPort++;
}
