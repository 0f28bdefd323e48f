import net from 'node:net';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsteriskEnv, type AsteriskEnv } from '../helpers/asterisk.js';
import { runSipp } from '../helpers/sipp.js';

// The service is NOT running here. A caller who presses # in the queue must not meet dead air:
// the dialplan notices that Stasis failed, says so on AMI and puts the caller back into the queue.
// AMI is read through a bare socket so that this test depends on Asterisk alone, not on src/.

/** One AMI message; header names lower-cased, as different Asterisk versions vary their case. */
type AmiMessage = Record<string, string>;

class Ami {
  readonly events: AmiMessage[] = [];
  private buffer = '';
  private bannerSeen = false;
  private nextId = 1;
  private readonly pending = new Map<string, (m: AmiMessage) => void>();
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
  }

  static connect(host: string, port: number): Promise<Ami> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => resolve(new Ami(socket)));
      socket.once('error', reject);
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    // the greeting "Asterisk Call Manager/x.y.z" is a single line, not a blank-line-terminated message
    if (!this.bannerSeen) {
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) return;
      this.buffer = this.buffer.slice(eol + 2);
      this.bannerSeen = true;
    }
    let end: number;
    while ((end = this.buffer.indexOf('\r\n\r\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 4);
      const msg: AmiMessage = {};
      for (const line of block.split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) msg[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const id = msg.actionid;
      if (msg.response !== undefined && id !== undefined && this.pending.has(id)) {
        this.pending.get(id)?.(msg);
        this.pending.delete(id);
      } else if (msg.event !== undefined) {
        this.events.push(msg);
        for (const wake of this.waiters) wake();
      }
    }
  }

  action(fields: Record<string, string>, timeoutMs = 5_000): Promise<AmiMessage> {
    const id = `t${this.nextId++}`;
    const text = Object.entries({ ...fields, ActionID: id }).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`AMI ${fields.Action ?? '?'}: no response in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.socket.write(text);
    });
  }

  /** Resolves with the first event (already received or to come) that matches; rejects after timeoutMs. */
  waitFor(match: (e: AmiMessage) => boolean, timeoutMs: number, what: string): Promise<AmiMessage> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(match);
        if (!found) return false;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = (): void => { check(); };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`AMI: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.waiters.add(wake);
    });
  }

  async close(): Promise<void> {
    await this.action({ Action: 'Logoff' }, 2_000).catch(() => undefined);
    this.socket.destroy();
  }
}

async function ariApplications(env: AsteriskEnv): Promise<string[]> {
  const auth = Buffer.from(`${env.ariUser}:${env.ariPass}`).toString('base64');
  const res = await fetch(`${env.ariUrl}/ari/applications`, {
    headers: { authorization: `Basic ${auth}` },
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
  const apps = (await res.json()) as Array<{ name: string }>;
  return apps.map((a) => a.name);
}

describe.skipIf(process.env.CALL_ACTIONS_NO_ASTERISK === '1')('queue exit while the service is down', () => {
  let env: AsteriskEnv;
  let ami: Ami;

  beforeAll(async () => {
    env = readAsteriskEnv();
    // another test file may just have stopped its service; give Asterisk a moment to drop the app
    const deadline = Date.now() + 5_000;
    while ((await ariApplications(env)).includes(env.ariApp)) {
      if (Date.now() > deadline) throw new Error(`ARI app ${env.ariApp} is registered: this test needs the service stopped`);
      await new Promise((r) => setTimeout(r, 200));
    }
    ami = await Ami.connect(env.amiHost, env.amiPort);
    const login = await ami.action({ Action: 'Login', Username: env.amiUser, Secret: env.amiPass, Events: 'on' });
    expect(login.response).toBe('Success');
  });

  afterAll(async () => {
    await ami?.close();
  });

  it('plays an apology and puts the caller back into the queue they left', async () => {
    const caller = `+1555${randomInt(1_000_000, 9_999_999)}`;
    const mine = (e: AmiMessage): boolean => e.calleridnum === caller;

    const sipp = await runSipp({
      scenario: 'queue_pound_stay',
      service: '100',
      from: caller,
      fromName: 'Fallback Test',
      timeoutMs: 30_000,
    });
    // the scenario fails if Asterisk hangs up on the caller before the caller's own BYE
    expect(sipp.code, `sipp output:\n${sipp.stdout.slice(-3000)}\n${sipp.stderr}`).toBe(0);

    const hangup = await ami.waitFor((e) => mine(e) && e.event === 'Hangup', 5_000, `Hangup for ${caller}`);
    const events = ami.events.filter(mine);
    const at = (e: AmiMessage): number => events.indexOf(e);

    const joins = events.filter((e) => e.event === 'QueueCallerJoin');
    expect(joins.map((e) => e.queue)).toEqual(['support', 'support']);

    const leave = events.find((e) => e.event === 'QueueCallerLeave');
    expect(leave?.queue).toBe('support');

    const fallback = events.find((e) => e.event === 'UserEvent' && e.userevent === 'CallActionsFallback');
    expect(fallback, 'CallActionsFallback user event').toBeDefined();
    expect(fallback?.stage).toBe('queue-exit');
    expect(fallback?.queue).toBe('support');

    const [first, second] = joins as [AmiMessage, AmiMessage];
    expect(at(first)).toBeLessThan(at(leave as AmiMessage));
    expect(at(leave as AmiMessage)).toBeLessThan(at(fallback as AmiMessage));
    expect(at(fallback as AmiMessage)).toBeLessThan(at(second));
    // back in line while still connected, at the place they had
    expect(at(second)).toBeLessThan(at(hangup));
    expect(second.position).toBe(first.position);
  });
});
