import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asteriskCli, REPO_ROOT } from './asterisk.js';
import { endAfterTest } from './leftovers.js';

/**
 * The queue member PJSIP/agent of the test PBX, played by a SIPp server on 127.0.0.1:5080
 * (test/sipp/agent_answer.xml): it answers Asterisk's qualify OPTIONS, so the member becomes
 * available, and answers each call after 300 ms ringing, talks 2 s and hangs up.
 */
export interface QueueAgent {
  /** Asks Asterisk to qualify the member now and waits until the queue sees it available. */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops the agent and waits until the queue sees the member unavailable again. */
  stop(): Promise<void>;
}

export async function startQueueAgent(): Promise<QueueAgent> {
  const child: ChildProcess = spawn(
    'sipp',
    ['-sf', join(REPO_ROOT, 'test/sipp/agent_answer.xml'), '-i', '127.0.0.1', '-p', '5080', '-mi', '127.0.0.1', '-mp', '17000', '-nostdin'],
    { cwd: tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const forget = endAfterTest(() => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve())).finally(forget);

  const memberState = async () => (await asteriskCli('queue show support')).split('\n').find((l) => l.includes('PJSIP/agent')) ?? '';
  // A qualify Asterisk sent before sipp bound its port fails a moment after a later one succeeded
  // (seen: Reachable, then Unreachable 40-360 ms later), and a member found unavailable is not rung
  // again before the queue's 8 s "press #" announcement is over: the state must hold, not flicker.
  const waitFor = async (want: (line: string) => boolean, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs;
    let line = '';
    let held = 0;
    while (Date.now() < deadline) {
      await asteriskCli('pjsip qualify agent');
      await new Promise((r) => setTimeout(r, 300));
      line = await memberState();
      held = want(line) ? held + 1 : 0;
      if (held === 3) return;
    }
    throw new Error(`queue member not ${what} within ${timeoutMs} ms: ${line}\n${stderr}`);
  };

  return {
    async ready(timeoutMs = 10_000) {
      if (child.exitCode !== null) throw new Error(`the agent's sipp exited: ${stderr}`);
      await waitFor((l) => /\(Not in use\)/.test(l), timeoutMs, 'available');
    },
    async stop() {
      // sipp keeps running on SIGTERM while calls are open; the scenario needs no cleanup
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await waitFor((l) => /\(Unavailable\)/.test(l), 10_000, 'unavailable');
    },
  };
}
