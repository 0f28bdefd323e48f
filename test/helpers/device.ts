import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './asterisk.js';
import { endAfterTest } from './leftovers.js';

/**
 * An office phone of the test PBX (PJSIP endpoints 2601 and 2602 in up.sh, contacts
 * sip:260N@127.0.0.1:508N), played by a SIPp server:
 * - `answer` (test/sipp/agent_answer.xml): rings 300 ms, answers, talks 2 s, hangs up;
 * - `ring` (device_ring.xml): rings until the call is cancelled (picked up elsewhere);
 * - `transfer` (device_transfer.xml): answers, talks 1 s, then transfers the caller to 2602 (REFER);
 * - `attended` (device_atxfer.xml): answers, keys *2 2602 # (attended transfer), hangs up once 2602 answered.
 */
export type DeviceBehaviour = 'answer' | 'ring' | 'transfer' | 'attended';

export interface Device {
  readonly extension: string;
  stop(): Promise<void>;
}

const SCENARIO: Record<DeviceBehaviour, string> = { answer: 'agent_answer', ring: 'device_ring', transfer: 'device_transfer', attended: 'device_atxfer' };

export async function startDevice(extension: '2601' | '2602', behaviour: DeviceBehaviour): Promise<Device> {
  const n = Number(extension.slice(-1));
  const args = ['-sf', join(REPO_ROOT, 'test/sipp', `${SCENARIO[behaviour]}.xml`), '-i', '127.0.0.1', '-p', String(5080 + n), '-mi', '127.0.0.1', '-mp', String(17100 + n * 100), '-nostdin'];
  if (behaviour === 'transfer') args.push('-set', 'target', '2602');
  const child: ChildProcess = spawn('sipp', args, { cwd: tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const forget = endAfterTest(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).finally(forget);
  // sipp binds its port within a few ms; an early exit (port taken, bad scenario) shows here
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`the sipp of phone ${extension} exited: ${stderr}`);
  return {
    extension,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
