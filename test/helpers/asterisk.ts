import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, readAsteriskEnv, type AsteriskEnv } from '../../src/demo/local-pbx.js';

export { REPO_ROOT, astxDir, readAsteriskEnv, type AsteriskEnv } from '../../src/demo/local-pbx.js';

const execFileP = promisify(execFile);

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
