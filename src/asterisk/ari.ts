import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import { Pool } from '../http/undici.js';
import WebSocket from 'ws';
import { exchange } from '../http/exchange.js';
import type { Logger } from '../log.js';
import { backoffDelay, reconnectForever, sleep, TimeoutError } from './backoff.js';
import { AriConnectionLost, WsRest, type RestResponse } from './ari-ws-rest.js';
import {
  ALLOWED_EVENT_TYPES,
  channelIdOf,
  type AriChannel,
  type AriEvent,
  type AriPlayback,
  type ChannelEventType,
  type EventOf,
  type StasisStart,
} from './ari-events.js';

/**
 * The ARI port: the event WebSocket (`ws`), which also carries REST where Asterisk supports it
 * (ari-ws-rest.ts), and an undici keep-alive pool for REST otherwise. It replaces
 * ari-client, whose defects it was written around and which it no longer needs:
 * - ari-client loads Asterisk's swagger description at connect, and swagger-client's
 *   `SwaggerApi.prototype.fail` throws from inside an HTTP callback on any bad answer (401, 503,
 *   invalid JSON, a reset): an uncatchable crash at start and at every reconnect. We read no swagger:
 *   events are plain JSON and our REST calls name their paths, so no such code path exists here;
 * - it gave up reconnecting after ~43 s (node-ari-client #14/#15): our loop reconnects forever,
 *   with capped backoff;
 * - it had no heartbeat: we ping the WebSocket and terminate it when no pong comes back;
 * - its REST calls had no timeout and opened a connection each (Asterisk's http sessionlimit);
 * - its per-instance listeners leaked (#43): events are dispatched from one map keyed by channel
 *   id, and a channel's handlers are dropped when it leaves Stasis.
 */
export interface AriOptions {
  url: string;
  user: string;
  password: string;
  app: string;
  /** every REST operation and the connect itself */
  timeoutMs: number;
  log: Logger;
  reconnect?: { initialMs: number; maxMs: number };
  /** how often the WebSocket is pinged; no pong within this long means it is dead */
  livenessMs?: number;
  /**
   * Asterisk refused the credentials (401/403). Called once per failed attempt; the port keeps
   * retrying unless this returns 'stop' (credentials can be fixed on the Asterisk side meanwhile).
   */
  onAuthRefused?: (status: number) => 'retry' | 'stop';
}

export interface ContinueTarget {
  context?: string;
  extension?: string;
  priority?: number;
  label?: string;
}

export type PlaybackOutcome = AriPlayback['state'] | 'channel-gone';

export interface ChannelHandle {
  readonly id: string;
  /** Returns the function that removes this handler (a gather listens only while it collects). */
  on<T extends ChannelEventType>(type: T, fn: (ev: EventOf<T>) => void): () => void;
  answer(): Promise<void>;
  /** A channel that is already gone counts as hung up (node-ari-client #78/#156). */
  hangup(reason?: string): Promise<void>;
  continueInDialplan(target?: ContinueTarget): Promise<void>;
  /** Plays media and resolves when it has finished (or failed, or the channel went away). */
  play(media: string, signal?: AbortSignal): Promise<PlaybackOutcome>;
  getVar(name: string): Promise<string | undefined>;
  setVar(name: string, value: string): Promise<void>;
  /** Sets several variables in one request (Asterisk's ARRAY()); an empty value clears one. */
  setVars(vars: Readonly<Record<string, string>>): Promise<void>;
  release(): void;
  /**
   * How long this channel's REST requests took, from sending to Asterisk's answer (or their
   * failure), summed: the part of a call's time in the service that Asterisk spends. Playbacks
   * count only their request, not the playing.
   */
  readonly restMs: number;
}

export class AriError extends Error {
  override name = 'AriError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Handler = (ev: never) => void;

/** Why the event stream is not connected, for /health; undefined while it is. */
export interface AriDown {
  reason: string;
  /** the HTTP status Asterisk (or a proxy) answered the upgrade with, when it answered one */
  status?: number;
  since: string;
}

interface RestOptions {
  query?: Record<string, string>;
  /** statuses that resolve to undefined instead of throwing (404: the channel is already gone) */
  benign?: number[];
  body?: unknown;
  /**
   * Over HTTP even when the WebSocket could carry it. Asterisk runs one WebSocket's requests one
   * after another on the thread that reads it, and answering a channel or setting a variable
   * waits for the channel's own thread, which is busy for the whole of a prompt being played: on
   * the WebSocket one such request would hold up every call's requests behind it; over HTTP it
   * holds only its own connection of the pool.
   */
  http?: boolean;
  /** Adds the request's time, answered or failed, to `ms` (a channel's ChannelHandle.restMs). */
  spent?: { ms: number };
}

/**
 * Asterisk reads a WebSocket message of at most 8 KB when built with LOW_MEMORY (64 KB otherwise)
 * and drops the connection on a longer one; a longer request goes over HTTP.
 */
const WS_REQUEST_MAX = 4096;

export class AriPort {
  private readonly events = new EventEmitter();
  private readonly channels = new Map<string, Map<ChannelEventType, Set<Handler>>>();
  /**
   * Channels whose StasisStart was handed out and whose StasisEnd was not yet seen. A call that
   * enters while we connect arrives twice, as its own StasisStart and in reconcile()'s list (whose
   * runner has not yet subscribed to it): this set hands it out once.
   */
  private readonly started = new Set<string>();
  /**
   * Channels this connection has sent an event for, while its reconcile() list is on its way. The
   * list may be older than such an event, and the event is the truth: a call that entered Stasis
   * after Asterisk made the list is not in it but has not left, and one that left is still in it
   * but must not be adopted again. Undefined outside that window, so it holds ids only briefly.
   */
  private heard: Set<string> | undefined;
  private readonly pool: Pool;
  /** The open WebSocket's REST, once Asterisk has answered on it (probeWsRest); undefined: REST over the pool. */
  private wsRest: WsRest | undefined;
  private readonly prefix: string;
  private readonly origin: string;
  private readonly wsUrl: string;
  private readonly auth: string;
  private readonly wake = new AbortController();
  private stopped = false;
  private isReady = false;
  private down: AriDown = { reason: 'not connected yet', since: new Date().toISOString() };
  private closeSocket: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;

  constructor(private readonly opts: AriOptions) {
    const url = new URL(opts.url);
    this.prefix = url.pathname.replace(/\/$/, '') + '/ari';
    this.origin = url.origin;
    this.pool = new Pool(url.origin, { connections: 32, pipelining: 1, keepAliveTimeout: 30_000 });
    this.auth = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    const ws = new URL(this.prefix + '/events', url);
    ws.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    ws.search = new URLSearchParams({ app: opts.app, subscribeAll: 'false' }).toString();
    this.wsUrl = ws.toString();
    this.events.setMaxListeners(0);
  }

  get ready(): boolean {
    return this.isReady;
  }

  /** True while REST goes over the event WebSocket; false while it goes over HTTP. */
  get restOverWebSocket(): boolean {
    return this.wsRest?.open ?? false;
  }

  /** Why ARI is not ready (undefined when it is). */
  get problem(): AriDown | undefined {
    return this.isReady ? undefined : this.down;
  }

  onStasisStart(fn: (ev: StasisStart) => void): void {
    this.events.on('StasisStart', fn);
  }

  /** Called with true each time the event stream is (re)connected, false when it drops. */
  onStatus(fn: (up: boolean) => void): void {
    this.events.on('status', fn);
  }

  start(): void {
    if (!this.loopDone) this.loopDone = this.supervise();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake.abort();
    this.closeSocket?.();
    await this.loopDone;
    await this.pool.close();
  }

  private setReady(up: boolean, down?: Omit<AriDown, 'since'>): void {
    if (!up && down) this.down = { ...down, since: new Date().toISOString() };
    if (up === this.isReady) return;
    this.isReady = up;
    this.opts.log.info({ ari: up ? 'up' : 'down' }, up ? 'ARI event stream connected' : 'ARI event stream lost');
    this.events.emit('status', up);
  }

  private supervise(): Promise<void> {
    return reconnectForever(() => this.session(), {
      ...(this.opts.reconnect ?? { initialMs: 500, maxMs: 10_000 }),
      isStopped: () => this.stopped,
      wake: () => this.wake.signal,
      onError: (e, attempt) => this.opts.log.warn({ err: e.message, attempt }, 'ARI connect failed'),
    });
  }

  /**
   * One WebSocket from upgrade to close. Resolves true when it was connected (the backoff starts
   * over), false when the upgrade failed; whatever the server answers, nothing here throws past
   * the promise: `ws` reports every failure as an event on the socket.
   */
  private session(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let opened = false;
      let settled = false;
      const socket = new WebSocket(this.wsUrl, {
        headers: { authorization: this.auth },
        handshakeTimeout: this.opts.timeoutMs,
        perMessageDeflate: false,
      });
      const livenessMs = this.opts.livenessMs ?? 5000;
      let lastPong = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const wsRest = new WsRest(socket);
      const finish = (down: Omit<AriDown, 'since'>) => {
        if (settled) return;
        settled = true;
        clearInterval(timer);
        // their answers would have come on this socket: fail them now rather than at their timeout
        if (this.wsRest === wsRest) this.wsRest = undefined;
        wsRest.close(down.reason);
        this.closeSocket = undefined;
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.terminate();
        this.setReady(false, down);
        resolve(opened);
      };
      this.closeSocket = () => finish({ reason: 'stopped' });
      socket.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        const refused = status === 401 || status === 403;
        const reason = refused ? `Asterisk refused the ARI credentials (${status})` : `ARI answered the WebSocket upgrade with ${status} ${res.statusMessage ?? ''}`.trim();
        // a refusal is reported by whoever knows where the credentials are written
        if (refused && this.opts.onAuthRefused) {
          if (this.opts.onAuthRefused(status) === 'stop') this.stopped = true;
        } else this.opts.log.warn({ status }, reason);
        finish({ reason, status });
      });
      socket.on('error', (err) => {
        if (!opened) this.opts.log.warn({ err: err.message }, 'ARI connect failed');
        finish({ reason: err.message });
      });
      socket.on('close', (code, why) => {
        if (opened) this.opts.log.warn({ code, reason: why.toString() }, 'ARI WebSocket closed; reconnecting');
        finish({ reason: `WebSocket closed (${code})` });
      });
      socket.on('pong', () => (lastPong = Date.now()));
      socket.on('message', (data: Buffer) => {
        let ev: AriEvent | RestResponse;
        try {
          ev = JSON.parse(data.toString('utf8')) as AriEvent | RestResponse;
        } catch (e) {
          this.opts.log.warn({ err: (e as Error).message }, 'ARI sent an event that is not JSON');
          return;
        }
        if (!ev || typeof ev.type !== 'string') return;
        if (ev.type === 'RESTResponse') {
          // one that timed out, or Asterisk's answer to a message it could not parse (no request_id)
          if (!wsRest.answer(ev)) this.opts.log.warn({ status: ev.status_code, reason: ev.reason_phrase, uri: ev.uri.split('?')[0] }, 'ARI answered a REST request nobody waits for');
          return;
        }
        this.dispatch(ev);
      });
      socket.on('open', () => {
        opened = true;
        this.heard = new Set();
        lastPong = Date.now();
        this.setReady(true);
        void this.narrowEvents().then(() => this.probeWsRest(wsRest));
        // this socket still up: once it has settled, a newer session reconciles for itself
        void this.reconcile(() => !settled);
        timer = setInterval(() => {
          if (Date.now() - lastPong > livenessMs * 2) {
            this.opts.log.warn({ silentMs: Date.now() - lastPong }, 'ARI WebSocket missed its pongs; dropping it');
            finish({ reason: 'WebSocket missed its pongs' });
            return;
          }
          socket.ping();
        }, livenessMs);
        timer.unref();
      });
    });
  }

  private dispatch(ev: AriEvent): void {
    if (this.heard && (ev.type === 'StasisStart' || ev.type === 'StasisEnd')) this.heard.add(ev.channel.id);
    if (ev.type === 'StasisStart') {
      this.handOut(ev);
      return;
    }
    const id = channelIdOf(ev);
    if (!id) return;
    const handlers = this.channels.get(id)?.get(ev.type);
    if (handlers) for (const fn of [...handlers]) safely(this.opts.log, () => (fn as (e: AriEvent) => void)(ev));
    // Leaving Stasis ends the scope: a later StasisStart for the same channel starts a new one.
    if (ev.type === 'StasisEnd' || ev.type === 'ChannelDestroyed') {
      this.channels.delete(id);
      this.started.delete(id);
    }
  }

  /** Hands a call out to onStasisStart once, whether it came as an event or from reconcile(). */
  private handOut(ev: StasisStart): void {
    if (this.started.has(ev.channel.id)) return;
    this.started.add(ev.channel.id);
    this.events.emit('StasisStart', ev);
  }

  /** Asks Asterisk for only the events we read; an Asterisk without event filters (before 16.?) sends them all. */
  private async narrowEvents(): Promise<void> {
    try {
      await this.rest('PUT', `/applications/${encodeURIComponent(this.opts.app)}/eventFilter`, {
        body: { allowed: ALLOWED_EVENT_TYPES.map((type) => ({ type })) },
      });
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'ARI event filter not set: Asterisk sends every event of our channels');
    }
  }

  /**
   * Does this Asterisk answer REST over the WebSocket? Asked once per connection, by sending a
   * request: an Asterisk before 20.14.0 / 21.9.0 / 22.4.0 reads what a client sends and ignores
   * it, so silence is its only "no". Asked by behaviour, not by the version in asterisk/info,
   * because Git and vendor builds carry versions that say nothing of it, and a backport would be
   * missed. Asked once the event filter is set: Asterisk drops the answer while the application's
   * filter lacks RESTResponse. Until the answer comes REST goes over HTTP; no deadline, so
   * an Asterisk too busy at connect to answer at once still gets the cheaper path when it does.
   */
  private async probeWsRest(ws: WsRest): Promise<void> {
    const silent = setTimeout(
      () => this.opts.log.info('Asterisk does not answer ARI REST over the WebSocket (it came with 20.14.0, 21.9.0, 22.4.0): REST goes over HTTP'),
      this.opts.timeoutMs,
    );
    silent.unref();
    try {
      await ws.request('GET', 'asterisk/ping', undefined, undefined, () => new Error('unreachable: no deadline'));
    } catch {
      return; // the socket closed first; the next connection asks again
    } finally {
      clearTimeout(silent);
    }
    if (!ws.open) return;
    this.wsRest = ws;
    this.opts.log.info('ARI REST goes over the event WebSocket');
  }

  /**
   * After every (re)connect: channels we were handling that no longer exist are ended, and
   * channels waiting in our app that nobody handles are started — Asterisk does not resend
   * StasisStart for them (CyCoreSystems/ari #144).
   */
  private async reconcile(connected: () => boolean): Promise<void> {
    const heard = this.heard ?? new Set<string>();
    let list: AriChannel[] | undefined;
    try {
      // Until it succeeds: the calls a killed process left in Stasis wait for this list (Asterisk
      // sends no event for them), and a busy Asterisk can let the first request time out.
      for (let attempt = 0; !list; attempt++) {
        try {
          list = await this.listChannels();
        } catch (e) {
          this.opts.log.warn({ err: (e as Error).message, attempt }, 'reconcile: cannot list channels; trying again');
          await sleep(backoffDelay(attempt, 250, 5000), this.wake.signal);
        }
        if (!connected() || this.stopped) return;
      }
    } finally {
      if (this.heard === heard) this.heard = undefined;
    }
    const live = new Map(list.map((c) => [c.id, c]));
    const now = new Date().toISOString();
    for (const id of new Set([...this.channels.keys(), ...this.started])) {
      // what this connection said of it is newer than the list: its StasisEnd comes the same way
      if (heard.has(id)) continue;
      const channel = live.get(id);
      if (!channel || !inApp(channel, this.opts.app)) {
        this.opts.log.info({ channel: id }, 'reconcile: channel left while ARI was disconnected');
        const gone = channel ?? ({ id } as AriChannel);
        this.dispatch({ type: 'StasisEnd', application: this.opts.app, timestamp: now, channel: gone });
      }
    }
    for (const channel of list) {
      if (inApp(channel, this.opts.app) && !heard.has(channel.id) && !this.channels.has(channel.id) && !this.started.has(channel.id)) {
        const args = (channel.dialplan.app_data ?? '').split(',').slice(1);
        this.opts.log.info({ channel: channel.id }, 'reconcile: adopting a channel waiting in Stasis');
        this.handOut({ type: 'StasisStart', application: this.opts.app, timestamp: now, channel, args });
      }
    }
    this.events.emit('reconciled');
  }

  async listChannels(): Promise<AriChannel[]> {
    return (await this.rest('GET', '/channels')) as AriChannel[];
  }

  channel(id: string): ChannelHandle {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const port = this;
    const scope = () => {
      let s = port.channels.get(id);
      if (!s) port.channels.set(id, (s = new Map()));
      return s;
    };
    const enc = encodeURIComponent(id);
    const spent = { ms: 0 };
    const setVar = async (name: string, value: string): Promise<void> => {
      await this.rest('POST', `/channels/${enc}/variable`, { query: { variable: name, value }, http: true, spent });
    };
    return {
      id,
      get restMs() {
        return spent.ms;
      },
      on(type, fn) {
        const s = scope();
        let set = s.get(type);
        if (!set) s.set(type, (set = new Set()));
        set.add(fn as Handler);
        const added = set;
        return () => void added.delete(fn as Handler);
      },
      answer: async () => {
        await this.rest('POST', `/channels/${enc}/answer`, { http: true, spent });
      },
      hangup: async (reason) => {
        await this.rest('DELETE', `/channels/${enc}`, { query: reason ? { reason } : undefined, benign: [404], spent });
      },
      continueInDialplan: async (target = {}) => {
        const q: Record<string, string> = {};
        if (target.context) q.context = target.context;
        if (target.extension) q.extension = target.extension;
        if (target.priority !== undefined) q.priority = String(target.priority);
        if (target.label) q.label = target.label;
        await this.rest('POST', `/channels/${enc}/continue`, { query: q, benign: [404], spent });
      },
      play: (media, signal) => this.play(id, media, signal, scope, spent),
      getVar: async (name) => {
        try {
          const r = (await this.rest('GET', `/channels/${enc}/variable`, { query: { variable: name }, spent })) as { value?: string };
          return r.value;
        } catch (e) {
          if (e instanceof AriError && e.status === 404) return undefined;
          throw e;
        }
      },
      setVar,
      setVars: async (vars) => {
        const names = Object.keys(vars);
        if (names.length <= 1) return names.length ? setVar(names[0]!, vars[names[0]!]!) : undefined;
        // ARRAY() splits its value at commas outside double quotes, and drops a backslash before any character
        await setVar(`ARRAY(${names.join(',')})`, names.map((n) => '"' + vars[n]!.replace(/["\\]/g, (c) => '\\' + c) + '"').join(','));
      },
      release: () => {
        this.channels.delete(id);
      },
    };
  }

  private play(
    channelId: string,
    media: string,
    signal: AbortSignal | undefined,
    scope: () => Map<ChannelEventType, Set<Handler>>,
    spent: { ms: number },
  ): Promise<PlaybackOutcome> {
    const playbackId = randomUUID();
    return new Promise<PlaybackOutcome>((resolve, reject) => {
      const s = scope();
      const add = <T extends ChannelEventType>(type: T, fn: (ev: EventOf<T>) => void) => {
        let set = s.get(type);
        if (!set) s.set(type, (set = new Set()));
        set.add(fn as Handler);
        return () => set.delete(fn as Handler);
      };
      const cleanups: Array<() => void> = [];
      const done = (outcome: PlaybackOutcome) => {
        cleanups.forEach((c) => c());
        resolve(outcome);
      };
      cleanups.push(
        add('PlaybackFinished', (ev) => ev.playback.id === playbackId && done(ev.playback.state)),
        add('StasisEnd', () => done('channel-gone')),
      );
      // A PlaybackFinished lost while the link was down would leave us waiting forever: ask.
      const onStatus = (up: boolean) => {
        if (!up) return;
        this.rest('GET', `/playbacks/${playbackId}`).catch((e) => {
          if (e instanceof AriError && e.status === 404) done('done');
        });
      };
      this.events.on('status', onStatus);
      cleanups.push(() => this.events.off('status', onStatus));
      const onAbort = () => {
        void this.rest('DELETE', `/playbacks/${playbackId}`, { benign: [404] }).catch(() => undefined);
        done('cancelled');
      };
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener('abort', onAbort));
      }
      this.rest('POST', `/channels/${encodeURIComponent(channelId)}/play/${playbackId}`, { query: { media }, spent }).catch((e) => {
        if (e instanceof AriError && e.status === 404) return done('channel-gone');
        cleanups.forEach((c) => c());
        reject(e);
      });
    });
  }

  /** One ARI REST call (request()), its time added to `o.spent` when given. */
  private async rest(method: string, path: string, o: RestOptions = {}): Promise<unknown> {
    if (!o.spent) return this.request(method, path, o);
    const t0 = performance.now();
    try {
      return await this.request(method, path, o);
    } finally {
      o.spent.ms += performance.now() - t0;
    }
  }

  /**
   * One ARI REST call with a timeout, over the WebSocket when Asterisk answers REST there, else
   * over HTTP; either way the same answer, the same AriError, the same deadline.
   */
  private async request(method: string, path: string, o: RestOptions): Promise<unknown> {
    const qs = o.query ? queryString(o.query) : '';
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const timeoutError = () => new TimeoutError(`ARI ${method} ${path} timed out after ${this.opts.timeoutMs} ms`);
    const ws = o.http ? undefined : this.wsRest;
    let status: number;
    let text: string;
    let reason = '';
    if (ws?.open && qs.length + (body?.length ?? 0) < WS_REQUEST_MAX) {
      ({ status, text, reason } = await ws.request(method, path.slice(1) + qs, body, this.opts.timeoutMs, timeoutError));
    } else {
      // exchange(), not undici's request(): ARI answers a few bytes, and request() wrapped each answer
      // in a stream and its deadline in an AbortController and signal listeners (per request, a few
      // per call). Its timer is cleared when the answer is in; AbortSignal.timeout()'s could not be.
      ({ status, text } = await exchange(
        this.pool,
        {
          method: method as Dispatcher.HttpMethod,
          origin: this.origin,
          path: this.prefix + path + qs,
          headers: body === undefined ? { authorization: this.auth } : { authorization: this.auth, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body }),
        },
        { timeoutMs: this.opts.timeoutMs, timeoutError },
      ));
    }
    if (status >= 300) {
      if (o.benign?.includes(status)) return undefined;
      // over the WebSocket an answer without a body (e.g. a request Asterisk could not parse) still has its reason phrase
      let message = text || reason;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        /* not JSON */
      }
      throw new AriError(status, `ARI ${method} ${path}: ${status} ${message}`);
    }
    return text ? JSON.parse(text) : undefined;
  }
}

/** Keys and values URLSearchParams writes as they are (its serializer leaves only these unescaped). */
const QUERY_SAFE = /^[A-Za-z0-9*._-]*$/;

/**
 * `?` and the query as URLSearchParams writes it, '' for none. A call's queries (a continue's
 * context, extension and priority, a variable's name) are nearly always plain words: those are
 * joined as they are, without the URLSearchParams object and its list of entries per request;
 * anything else goes through URLSearchParams, so the bytes sent are the same either way.
 */
export function queryString(query: Readonly<Record<string, string>>): string {
  let out = '';
  for (const k in query) {
    const v = query[k]!;
    if (!QUERY_SAFE.test(k) || !QUERY_SAFE.test(v)) return '?' + new URLSearchParams(query).toString();
    out += (out === '' ? '?' : '&') + k + '=' + v;
  }
  return out;
}

function inApp(c: AriChannel, app: string): boolean {
  return c.dialplan.app_name === 'Stasis' && (c.dialplan.app_data ?? '').split(',')[0] === app;
}

function safely(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.error({ err: e }, 'ARI event handler threw');
  }
}
