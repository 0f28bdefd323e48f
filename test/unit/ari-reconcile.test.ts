import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { AriPort } from '../../src/asterisk/ari.js';
import type { AriChannel, StasisStart } from '../../src/asterisk/ari-events.js';
import { createLogger } from '../../src/log.js';

/**
 * After each connect the port lists the channels waiting in its application and adopts those it
 * does not handle (Asterisk sends no StasisStart for them again). A call that enters while the
 * port connects is in that list and also arrives as its own StasisStart; the chaos run found such
 * calls run twice by a restarted service and left without an answer. Here Asterisk's side is
 * played by a server that sends the event first and answers the list a moment later, as Asterisk
 * did, and the other way round.
 */
const APP = 'call-actions';

function channel(id: string): AriChannel {
  return {
    id,
    name: `PJSIP/caller-${id}`,
    state: 'Ring',
    caller: { name: 'Caller', number: '+819012345678' },
    connected: { name: '', number: '' },
    dialplan: { context: 'default', exten: '501', priority: 2, app_name: 'Stasis', app_data: `${APP},t501` },
  };
}

function stasisStart(c: AriChannel): StasisStart {
  return { type: 'StasisStart', application: APP, timestamp: new Date().toISOString(), channel: c, args: ['t501'] };
}

interface Pbx {
  url: string;
  socket(): Promise<WebSocket>;
  close(): Promise<void>;
}

/** `list` answers GET /channels; `listDelayMs` holds that answer back. */
async function startPbx(list: () => AriChannel[], listDelayMs: number): Promise<Pbx> {
  const wss = new WebSocketServer({ noServer: true });
  let connected: (ws: WebSocket) => void;
  const socket = new Promise<WebSocket>((r) => (connected = r));
  const server: Server = createServer((req, res) => {
    const answer = (body: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url?.startsWith('/ari/channels')) setTimeout(() => answer(list()), listDelayMs);
    else answer({});
  });
  server.on('upgrade', (req, sock, head) => wss.handleUpgrade(req, sock, head, (ws) => connected(ws)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    socket: () => socket,
    async close() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

let pbx: Pbx | undefined;
let port: AriPort | undefined;
afterEach(async () => {
  await port?.stop();
  await pbx?.close();
  port = pbx = undefined;
});

async function connect(list: () => AriChannel[], listDelayMs: number) {
  pbx = await startPbx(list, listDelayMs);
  port = new AriPort({ url: pbx.url, user: 'u', password: 'p', app: APP, timeoutMs: 2000, log: createLogger({ level: 'silent' }) });
  const started: string[] = [];
  port.onStasisStart((ev) => started.push(ev.channel.id));
  port.start();
  return { started, ws: await pbx.socket() };
}

const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

describe('ARI port: a call that enters while the port connects', () => {
  it('is handed out once when its StasisStart arrives before the channel list', async () => {
    const c = channel('1700000000.1');
    const { started, ws } = await connect(() => [c], 100);
    ws.send(JSON.stringify(stasisStart(c)));
    await settle(300);
    expect(started).toEqual([c.id]);
  });

  it('is handed out once when the channel list adopts it before its StasisStart arrives', async () => {
    const c = channel('1700000000.2');
    const { started, ws } = await connect(() => [c], 0);
    await settle(100);
    expect(started).toEqual([c.id]);
    ws.send(JSON.stringify(stasisStart(c)));
    await settle();
    expect(started).toEqual([c.id]);
  });

  it('is handed out again when it comes back after leaving (a second stage)', async () => {
    const c = channel('1700000000.3');
    const { started, ws } = await connect(() => [], 0);
    ws.send(JSON.stringify(stasisStart(c)));
    await settle(100);
    ws.send(JSON.stringify({ type: 'StasisEnd', application: APP, timestamp: new Date().toISOString(), channel: c }));
    ws.send(JSON.stringify(stasisStart(c)));
    await settle();
    expect(started).toEqual([c.id, c.id]);
  });
});
