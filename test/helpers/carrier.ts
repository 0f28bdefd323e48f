import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './asterisk.js';
import { endAfterTest } from './leftovers.js';

/**
 * The far end of the test PBX's "carrier" trunk (sip:carrier@127.0.0.1:5090), played by a SIPp
 * server: `agent_answer` answers each call after 300 ms ringing, talks 2 s and hangs up;
 * `carrier_no_answer` rings 2 s and gives up with 480.
 */
export interface Carrier {
  stop(): Promise<void>;
}

export async function startCarrier(scenario: 'agent_answer' | 'carrier_no_answer'): Promise<Carrier> {
  const child: ChildProcess = spawn(
    'sipp',
    ['-sf', join(REPO_ROOT, 'test/sipp', `${scenario}.xml`), '-i', '127.0.0.1', '-p', '5090', '-mi', '127.0.0.1', '-mp', '17100', '-nostdin'],
    { cwd: tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const forget = endAfterTest(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).finally(forget);
  // sipp binds its port within a few ms; an early exit (port taken) shows here
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`the carrier's sipp exited: ${stderr}`);
  return {
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
