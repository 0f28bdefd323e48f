import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Logger } from '../log.js';
import { reconnectForever, TimeoutError } from './backoff.js';

/**
 * The AMI port: the only module that knows asterisk-manager. Contained defects:
 * - its keepConnected() waits 10→60 s and logs to the console: we supervise the link ourselves,
 *   forever, with capped backoff;
 * - an action sent while the link is down never calls back: every action has a timeout;
 * - list actions (QueueStatus, CoreShowChannels) answer with events: we collect them by ActionID
 *   until the "…Complete" event;
 * - no heartbeat: a Ping on a timer, and a dead link is dropped;
 * - login failures are silent when it logs in by itself: we log in explicitly;
 * - its manager is not an EventEmitter but an object with some of one's methods bound to a hidden
 *   one (on, once, removeListener…; no `off`): `Manager` below declares only those, so that calling
 *   a missing one does not compile (a list action's `off` crashed the service when AMI came back).
 */
const require = createRequire(import.meta.url);
const AsteriskManager = require('asterisk-manager') as ManagerFactory;

/** AMI events and responses as asterisk-manager gives them: keys lower-cased, values strings. */
export type AmiMessage = Record<string, string | undefined>;

type Listener = (...args: never[]) => void;

interface Manager {
  on(event: string, fn: Listener): void;
  once(event: string, fn: Listener): void;
  removeListener(event: string, fn: Listener): void;
  removeAllListeners(event?: string): void;
  connect(port: number, host: string, cb: (err?: Error) => void): void;
  login(cb: (err?: AmiMessage) => void): void;
  action(action: Record<string, string>, cb: (err: AmiMessage | undefined, res: AmiMessage) => void): string;
  disconnect(): void;
}
type ManagerFactory = new (port: number | undefined, host: string, user: string, secret: string, events: boolean) => Manager;

export interface AmiOptions {
  host: string;
  port: number;
  user: string;
  secret: string;
  timeoutMs: number;
  log: Logger;
  reconnect?: { initialMs: number; maxMs: number };
  heartbeatMs?: number;
  /** false: Asterisk sends no events, only answers to actions (when nothing here listens, each event would be parsed for nothing). */
  events?: boolean;
}

export class AmiError extends Error {
  override name = 'AmiError';
}

export class AmiPort {
  private readonly events = new EventEmitter();
  private manager: Manager | undefined;
  private isReady = false;
  private stopped = false;
  private wake: AbortController | undefined;
  private loopDone: Promise<void> | undefined;

  constructor(private readonly opts: AmiOptions) {
    this.events.setMaxListeners(0);
  }

  get ready(): boolean {
    return this.isReady;
  }

  start(): void {
    if (!this.loopDone) this.loopDone = this.supervise();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.abort();
    await this.loopDone;
  }

  /** Subscribes to one AMI event by name (any case); returns the unsubscribe function. */
  on(event: string, fn: (ev: AmiMessage) => void): () => void {
    const name = event.toLowerCase();
    this.events.on(name, fn);
    return () => this.events.off(name, fn);
  }

  onStatus(fn: (up: boolean) => void): void {
    this.events.on('status', fn);
  }

  action(action: Record<string, string>, timeoutMs = this.opts.timeoutMs): Promise<AmiMessage> {
    const manager = this.manager;
    if (!manager || !this.isReady) return Promise.reject(new AmiError(`AMI ${action.action}: not connected`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`AMI ${action.action} timed out after ${timeoutMs} ms`)), timeoutMs);
      manager.action(action, (err, res) => {
        clearTimeout(timer);
        if (err) reject(new AmiError(`AMI ${action.action}: ${err.message ?? 'error'}`));
        else resolve(res);
      });
    });
  }

  /** A list action: the events that answer it, in order, up to its …Complete event. */
  async list(action: Record<string, string>, timeoutMs = this.opts.timeoutMs): Promise<AmiMessage[]> {
    const manager = this.manager;
    if (!manager || !this.isReady) throw new AmiError(`AMI ${action.action}: not connected`);
    const actionid = `ca-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const collected: AmiMessage[] = [];
    return new Promise<AmiMessage[]>((resolve, reject) => {
      const onEvent = (ev: AmiMessage) => {
        if (ev.actionid !== actionid) return;
        if (ev.eventlist?.toLowerCase() === 'complete' || ev.event?.endsWith('Complete')) finish(null);
        else collected.push(ev);
      };
      const finish = (err: Error | null) => {
        clearTimeout(timer);
        manager.removeListener('managerevent', onEvent);
        if (err) reject(err);
        else resolve(collected);
      };
      const timer = setTimeout(() => finish(new TimeoutError(`AMI ${action.action} list timed out after ${timeoutMs} ms`)), timeoutMs);
      manager.on('managerevent', onEvent);
      manager.action({ ...action, actionid }, (err) => {
        if (err) finish(new AmiError(`AMI ${action.action}: ${err.message ?? 'error'}`));
      });
    });
  }

  private setReady(up: boolean): void {
    if (up === this.isReady) return;
    this.isReady = up;
    this.opts.log.info({ ami: up ? 'up' : 'down' }, up ? 'AMI connected' : 'AMI connection lost');
    this.events.emit('status', up);
  }

  private supervise(): Promise<void> {
    return reconnectForever(() => this.session(), {
      ...(this.opts.reconnect ?? { initialMs: 500, maxMs: 10_000 }),
      isStopped: () => this.stopped,
      wake: () => this.wake?.signal,
      onError: (e, attempt) => this.opts.log.warn({ err: e.message, attempt }, 'AMI connect failed'),
    });
  }

  /** One connection, from login until it is lost; true when the login succeeded. */
  private async session(): Promise<boolean> {
    const manager = new AsteriskManager(undefined, this.opts.host, this.opts.user, this.opts.secret, this.opts.events ?? true);
    const wake = (this.wake = new AbortController());
    const lost = new Promise<string>((resolve) => {
      manager.on('close', () => resolve('closed'));
      manager.on('end', () => resolve('ended'));
      manager.on('error', (e: Error) => resolve(e.message));
      wake.signal.addEventListener('abort', () => resolve('dropped'), { once: true });
    });
    try {
      await this.login(manager);
      this.manager = manager;
      manager.on('managerevent', (ev: AmiMessage) => ev.event && this.events.emit(ev.event.toLowerCase(), ev));
      this.setReady(true);
      const heartbeat = this.heartbeat();
      const why = await lost;
      clearInterval(heartbeat);
      if (!this.stopped) this.opts.log.warn({ reason: why }, 'AMI link down');
      return true;
    } finally {
      this.setReady(false);
      this.manager = undefined;
      manager.removeAllListeners();
      manager.on('error', () => undefined);
      manager.disconnect();
      // a fresh controller, so the backoff sleep is only cut short by stop()
      this.wake = this.stopped ? wake : new AbortController();
    }
  }

  private login(manager: Manager): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError('AMI login timed out')), this.opts.timeoutMs);
      manager.once('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
      manager.connect(this.opts.port, this.opts.host, () => {
        manager.login((err) => {
          clearTimeout(timer);
          if (err) reject(new AmiError(`AMI login refused: ${err.message ?? 'authentication failed'}`));
          else resolve();
        });
      });
    });
  }

  /** Pings on a timer; two misses in a row drop the link so the supervisor reconnects. */
  private heartbeat(): NodeJS.Timeout {
    const every = this.opts.heartbeatMs ?? 5000;
    let misses = 0;
    const timer = setInterval(() => {
      this.action({ action: 'Ping' }, every).then(
        () => (misses = 0),
        () => {
          if (++misses >= 2) {
            this.opts.log.warn('AMI heartbeat lost');
            this.wake?.abort();
          }
        },
      );
    }, every);
    timer.unref();
    return timer;
  }
}
