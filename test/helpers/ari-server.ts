import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * What Asterisk's HTTP server (or a proxy in front of it) may answer while it is not ready, on every
 * path: the swagger description, each resource file, the event WebSocket's upgrade and REST.
 */
export type AriFailure = 401 | 403 | 404 | 500 | 503 | 'invalid-json' | 'truncated' | 'reset' | 'slow';
export const ARI_FAILURES: readonly AriFailure[] = [401, 403, 404, 500, 503, 'invalid-json', 'truncated', 'reset', 'slow'];

export interface AriServer {
  readonly url: string;
  /** every request line seen, e.g. `GET /ari/api-docs/resources.json` */
  readonly requests: string[];
  /** answer everything with this failure, or (undefined) like Asterisk: events WebSocket + the REST we use */
  fail: AriFailure | undefined;
  /** WebSockets accepted while answering like Asterisk */
  readonly accepted: number;
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A stand-in for Asterisk's HTTP server on the ARI URL, switchable between failing and working. */
export async function startAriServer(opts: { user: string; password: string; fail?: AriFailure }): Promise<AriServer> {
  const auth = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<Socket>();
  const state = { fail: opts.fail as AriFailure | undefined, accepted: 0 };
  const requests: string[] = [];

  // Answers written to the raw socket, so that the same code serves plain requests and upgrades.
  const answerFailure = (socket: Socket, failure: AriFailure) => {
    switch (failure) {
      case 'reset':
        socket.resetAndDestroy();
        return;
      case 'slow':
        // holds the request far longer than the service's ARI timeout, then answers like Asterisk would
        setTimeout(() => socket.destroyed || socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n'), 20_000).unref();
        return;
      case 'invalid-json': {
        const body = '{"apis": [ this is not json';
        socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        return;
      }
      case 'truncated':
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"apiVersion":"2.0.0","apis":[{"path":');
        setTimeout(() => socket.destroy(), 50);
        return;
      default: {
        const body = JSON.stringify({ error: STATUS_TEXT[failure] });
        const challenge = failure === 401 ? 'www-authenticate: Basic realm="asterisk"\r\n' : '';
        socket.end(`HTTP/1.1 ${failure} ${STATUS_TEXT[failure]}\r\n${challenge}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
    }
  };

  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (state.fail !== undefined) return answerFailure(req.socket, state.fail);
    if (req.headers.authorization !== auth) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"Authentication required"}');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === '/ari/channels') return void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    if (req.method === 'PUT' && /^\/ari\/applications\/[^/]+\/eventFilter$/.test(path)) {
      req.resume();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Resource not found"}');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    // The service may reset a connection (its timeout, a truncated answer, its SIGKILL at the end
    // of a test). Node's HTTP server stops handling a socket's errors once it is handed to the
    // 'upgrade' listener, and an unhandled ECONNRESET there failed the whole test file.
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests.push(`UPGRADE ${req.url}`);
    if (state.fail !== undefined) return answerFailure(socket, state.fail);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/ari/events' || !url.searchParams.get('app')) return answerFailure(socket, 404);
    if (req.headers.authorization !== auth) return answerFailure(socket, 401);
    wss.handleUpgrade(req, socket, head, (ws) => {
      state.accepted++;
      ws.on('error', () => undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get fail() {
      return state.fail;
    },
    set fail(f) {
      state.fail = f;
    },
    get accepted() {
      return state.accepted;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
