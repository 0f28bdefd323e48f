import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// One real Asterisk for the whole run (see docker/asterisk/up.sh).
//   CALL_ACTIONS_NO_ASTERISK=1    neither start nor stop it (unit tests only, or an Asterisk you manage)
//   CALL_ACTIONS_KEEP_ASTERISK=1  leave it running afterwards, so the next run starts in ~0.1 s
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

function runScript(name: 'up.sh' | 'down.sh'): Promise<void> {
  const script = join(REPO_ROOT, 'docker/asterisk', name);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    // a cold build takes about a minute: CI logs should show its progress as it happens
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      process.stderr.write(d);
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => { output += d; });
    child.on('error', (err) => reject(new Error(`cannot run ${script}: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${name} failed (${signal ?? `exit ${code}`}):\n${output}`));
    });
  });
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.env.CALL_ACTIONS_NO_ASTERISK === '1') return undefined;
  await runScript('up.sh');
  return async () => {
    if (process.env.CALL_ACTIONS_KEEP_ASTERISK === '1') return;
    await runScript('down.sh');
  };
}
