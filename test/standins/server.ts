import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * The HTTP side the stand-ins (and the tests' hook receiver) share, so each of their files is only
 * its contract: a server on a free port of 127.0.0.1 that hands over each request with its whole
 * body, requests held until released, waits on the stand-in's own conditions, and a close that
 * does not wait for a client's keep-alive connection to end.
 */
export interface StandInServer {
  readonly server: Server;
  /** e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Which connection this is (1-based, in accept order); 0 if unknown. */
  connectionOf(socket: Socket): number;
  /** Has every waitUntil() look at its condition again; call it when the stand-in's state changed. */
  notify(): void;
  /** Resolves once `done()` holds; rejects after timeoutMs with `timeoutMessage()`. */
  waitUntil(done: () => boolean, timeoutMs: number, timeoutMessage: () => string): Promise<void>;
  /** Resolves on release(), on close() or when the client goes away. */
  hang(res: ServerResponse): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

export async function startStandInServer(onRequest: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<StandInServer> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const connectionIds = new WeakMap<Socket, number>();
  const hanging = new Set<() => void>();
  const waiters = new Set<() => void>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => onRequest(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (socket) => {
    connections += 1;
    connectionIds.set(socket, connections);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get connections() {
      return connections;
    },
    connectionOf: (socket) => connectionIds.get(socket) ?? 0,
    notify: () => [...waiters].forEach((w) => w()),
    waitUntil(done, timeoutMs, timeoutMessage) {
      if (done()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!done()) return;
          stop();
          resolve();
        };
        const timer = setTimeout(() => {
          stop();
          reject(new Error(timeoutMessage()));
        }, timeoutMs);
        const stop = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    hang: (res) =>
      new Promise<void>((resolve) => {
        const go = () => {
          hanging.delete(go);
          resolve();
        };
        hanging.add(go);
        res.on('close', go);
      }),
    release: () => [...hanging].forEach((go) => go()),
    async close() {
      for (const go of [...hanging]) go();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

export function clientGone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed;
}

/**
 * Writes an answer and records it on the request once it was handed to a client that was still
 * connected; only then does `onWritten` run, which is when the SMS stand-ins count a delivery.
 */
export function answer(
  res: ServerResponse,
  recorded: { answered?: { status: number; body: string } },
  status: number,
  body: string,
  onWritten?: () => void,
  contentType = 'application/json; charset=utf-8',
): void {
  if (clientGone(res)) return;
  // Node detaches the socket from the response as it finishes, so hold on to it here.
  const socket = res.socket!;
  res.on('finish', () => {
    if (!socket.destroyed) {
      recorded.answered = { status, body };
      onWritten?.();
    }
  });
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
