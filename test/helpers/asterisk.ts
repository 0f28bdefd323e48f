import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** The repository root, whatever the working directory of the test run. */
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

/** Runs one Asterisk CLI command (e.g. 'queue show support') through the control socket in the chroot. */
export async function asteriskCli(cmd: string, env: AsteriskEnv = readAsteriskEnv()): Promise<string> {
  const { stdout } = await execFileP('chroot', [env.root, '/usr/sbin/asterisk', '-rx', cmd], {
    timeout: 10_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function runScript(name: 'up.sh' | 'down.sh'): Promise<string> {
  const script = join(REPO_ROOT, 'docker/asterisk', name);
  try {
    const { stderr } = await execFileP('bash', [script], {
      cwd: REPO_ROOT,
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${name} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** Stops Asterisk and keeps the chroot (down.sh). Resolves when it is gone; a no-op if it was not running. */
export async function stopAsterisk(): Promise<void> {
  await runScript('down.sh');
}

/** Starts Asterisk, or leaves it alone if it already runs with the current configs (up.sh). */
export async function startAsterisk(): Promise<AsteriskEnv> {
  await runScript('up.sh');
  return readAsteriskEnv();
}

/** A fresh Asterisk process: drops every channel, registration and ARI/AMI connection. */
export async function restartAsterisk(): Promise<AsteriskEnv> {
  await stopAsterisk();
  return startAsterisk();
}
