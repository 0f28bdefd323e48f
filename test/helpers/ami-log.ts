import net from 'node:net';
import { readAsteriskEnv } from './asterisk.js';

/**
 * Every AMI event of the test PBX, read through a bare socket (so assertions about where a call
 * went depend on Asterisk alone, not on src/), with the time each one arrived. Header names are
 * lower-cased.
 */
export type AmiEvent = Record<string, string> & { receivedAt: string };

export class AmiLog {
  readonly events: AmiEvent[] = [];
  private buffer = '';
  private bannerSeen = false;
  private nextId = 1;
  private readonly pending = new Map<string, (m: Record<string, string>) => void>();
  private readonly waiters = new Set<() => void>();
  private readonly mine = new Set<string>();

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
  }

  static async open(): Promise<AmiLog> {
    const env = readAsteriskEnv();
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: env.amiHost, port: env.amiPort });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    const ami = new AmiLog(socket);
    const login = await ami.action({ Action: 'Login', Username: env.amiUser, Secret: env.amiPass, Events: 'on' });
    if (login.response !== 'Success') throw new Error(`AMI login failed: ${JSON.stringify(login)}`);
    return ami;
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
      const msg: Record<string, string> = {};
      for (const line of block.split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) msg[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const id = msg.actionid;
      if (msg.response !== undefined && id !== undefined && this.pending.has(id)) {
        this.pending.get(id)?.(msg);
        this.pending.delete(id);
      } else if (msg.event !== undefined) {
        this.events.push({ ...msg, receivedAt: String(Date.now()) });
        for (const wake of this.waiters) wake();
      }
    }
  }

  action(fields: Record<string, string>, timeoutMs = 5_000): Promise<Record<string, string>> {
    const id = `r${this.nextId++}`;
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

  waitFor(match: (e: AmiEvent) => boolean, timeoutMs: number, what: string): Promise<AmiEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(match);
        if (!found) return false;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`AMI: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.waiters.add(wake);
    });
  }

  /** The linkedid of the call whose first channel carries this caller number. */
  async linkedIdOf(callerNum: string, timeoutMs = 10_000): Promise<string> {
    const e = await this.waitFor((x) => x.event === 'Newchannel' && x.calleridnum === callerNum, timeoutMs, `Newchannel from ${callerNum}`);
    const id = e.linkedid ?? e.uniqueid!;
    this.mine.add(id);
    return id;
  }

  /** Every event of one call (all its channels), in order. */
  ofCall(linkedId: string): AmiEvent[] {
    return this.events.filter((e) => e.linkedid === linkedId);
  }

  /**
   * Hangs up what is left of the calls looked up with linkedIdOf(): a caller whose SIPp was cut
   * off would otherwise wait in a queue (and move everyone else's position) until Asterisk restarts.
   */
  async hangUpLeftovers(): Promise<string[]> {
    const gone = new Set(this.events.filter((e) => e.event === 'Hangup').map((e) => e.uniqueid));
    const left = this.events.filter((e) => e.event === 'Newchannel' && this.mine.has(e.linkedid ?? '') && !gone.has(e.uniqueid));
    for (const e of left) await this.action({ Action: 'Hangup', Channel: e.channel! }).catch(() => undefined);
    return left.map((e) => e.channel!);
  }

  async close(): Promise<void> {
    await this.hangUpLeftovers();
    await this.action({ Action: 'Logoff' }, 2_000).catch(() => undefined);
    this.socket.destroy();
  }
}
