import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { AriPort } from '../../src/asterisk/ari.js';
import { ALLOWED_EVENT_TYPES, type StasisStart } from '../../src/asterisk/ari-events.js';
import { readAsteriskEnv } from '../helpers/asterisk.js';

/**
 * The ARI port against the real Asterisk, for what only Asterisk can answer: several variables in
 * one request (ARRAY()) arrive whole whatever they contain, the application's event filter
 * is in place after the port connects, and REST goes over the event WebSocket (Asterisk 22.4 and
 * later) with the answers HTTP gave. The port reaches Asterisk through a proxy that counts the
 * HTTP requests, so that what went over the WebSocket is what never reached it as HTTP.
 */
const APP = 'call-actions-port-test';
const env = readAsteriskEnv();
const auth = 'Basic ' + Buffer.from(`${env.ariUser}:${env.ariPass}`).toString('base64');
let port: AriPort;
let proxy: CountingProxy;
const started: StasisStart[] = [];

interface CountingProxy {
  url: string;
  /** "METHOD /path" of every plain HTTP request passed on (upgrades are piped, not counted) */
  requests: string[];
  close(): Promise<void>;
}

async function startCountingProxy(target: string): Promise<CountingProxy> {
  const t = new URL(target);
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`);
    const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.statusMessage, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, client: Socket, head: Buffer) => {
    const up = connect(Number(t.port), t.hostname, () => {
      let lines = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(lines + '\r\n');
      up.write(head);
      client.pipe(up).pipe(client);
    });
    sockets.add(up);
    up.once('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function ari(method: string, path: string): Promise<any> {
  const res = await fetch(`${env.ariUrl.replace(/\/$/, '')}/ari${path}`, { method, headers: { authorization: auth } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  proxy = await startCountingProxy(env.ariUrl);
  port = new AriPort({ url: proxy.url, user: env.ariUser, password: env.ariPass, app: APP, timeoutMs: 3000, log: createLogger({ level: 'silent' }) });
  port.onStasisStart((ev) => started.push(ev));
  port.start();
  await until(() => (port.ready ? true : undefined), 'ARI connected', 10_000);
});
afterAll(async () => {
  await port?.stop();
  await proxy?.close();
});

describe('ARI port on the real Asterisk', () => {
  it('asks Asterisk for only the events it reads', async () => {
    const app = await until(async () => {
      const a = await ari('GET', `/applications/${APP}`);
      return a.events_allowed?.length ? a : undefined;
    }, 'the event filter');
    expect(app.events_allowed.map((e: { type: string }) => e.type).sort()).toEqual([...ALLOWED_EVENT_TYPES].sort());
    expect(app.events_allowed.map((e: { type: string }) => e.type)).not.toContain('ChannelVarset');
  });

  it('sets several variables in one request, whatever they contain, and clears one with an empty value', async () => {
    const created = await ari('POST', `/channels/create?endpoint=${encodeURIComponent('Local/s@default')}&app=${APP}`);
    try {
      // the channel enters the application a moment after create answers; before that, 409
      await until(() => started.find((e) => e.channel.id === created.id), 'its StasisStart');
      const channel = port.channel(created.id);
      const vars = {
        CA_T_PLAIN: 'queue:vip',
        CA_T_COMMAS: 'call-actions-dest,queue-support,1',
        CA_T_QUOTES: 'PJSIP/+1555@carrier,"x"\\y (z)',
        CA_T_SIGNS: 'a;b|c$d{e}[f]',
        CA_T_UNICODE: 'Zoë 日本',
        CA_T_EMPTY: '',
      };
      await channel.setVar('CA_T_EMPTY', 'left over from an earlier route');
      await channel.setVars(vars);
      for (const [name, value] of Object.entries(vars)) expect(await channel.getVar(name), name).toBe(value);
      await channel.setVars({ CA_T_ONE: 'only, one' });
      expect(await channel.getVar('CA_T_ONE')).toBe('only, one');
    } finally {
      await ari('DELETE', `/channels/${created.id}`).catch(() => undefined);
    }
  });

  it('carries its channel requests over the event WebSocket, with the answers HTTP gave', async () => {
    await until(() => (port.restOverWebSocket ? true : undefined), 'REST over the WebSocket');
    const created = await ari('POST', `/channels/create?endpoint=${encodeURIComponent('Local/s@default')}&app=${APP}`);
    try {
      await until(() => started.find((e) => e.channel.id === created.id), 'its StasisStart');
      const channel = port.channel(created.id);
      const ended = new Promise<void>((resolve) => channel.on('StasisEnd', () => resolve()));
      expect(await channel.getVar('CHANNEL(name)')).toBe(created.name);
      expect(await channel.getVar('CA_T_NEVER_SET')).toBeUndefined(); // Asterisk: 404, variable not found
      await channel.hangup('normal');
      await ended;
      // gone: what the callers rely on, over the WebSocket as over HTTP
      await channel.continueInDialplan({ context: 'default', extension: 's', priority: 1 });
      await channel.hangup();
      expect(await channel.getVar('CHANNEL(name)')).toBeUndefined();
      expect(await channel.play('sound:beep')).toBe('channel-gone');
      expect(proxy.requests.filter((r) => r.includes(created.id))).toEqual([]);
    } finally {
      await ari('DELETE', `/channels/${created.id}`).catch(() => undefined);
    }
  });
});
