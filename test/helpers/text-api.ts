import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A stand-in for a customer's own API that hands out SMS texts (S8): records what each request
 * carried (query, form or JSON fields) and answers as the test says — a JSON text, or nothing at
 * all until the client gives up (a timeout).
 */
export interface TextApiRequest {
  at: number;
  method: string;
  path: string;
  contentType: string;
  /** Query parameters merged with the form or JSON body fields. */
  fields: Record<string, string>;
}

export type TextApiBehaviour = { kind: 'json'; body: unknown } | { kind: 'hang' };

export interface TextApiStandIn {
  readonly url: string;
  readonly requests: readonly TextApiRequest[];
  setBehaviour(b: TextApiBehaviour): void;
  close(): Promise<void>;
}

export async function startTextApi(): Promise<TextApiStandIn> {
  const requests: TextApiRequest[] = [];
  let behaviour: TextApiBehaviour = { kind: 'json', body: { message: 'default text' } };
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8').on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const contentType = String(req.headers['content-type'] ?? '');
      const fields: Record<string, string> = Object.fromEntries(url.searchParams);
      if (contentType.startsWith('application/x-www-form-urlencoded')) Object.assign(fields, Object.fromEntries(new URLSearchParams(raw)));
      if (contentType.startsWith('application/json')) Object.assign(fields, JSON.parse(raw) as Record<string, string>);
      requests.push({ at: Date.now(), method: req.method ?? '', path: url.pathname, contentType, fields });
      if (behaviour.kind === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const body = JSON.stringify(behaviour.body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    setBehaviour: (b) => void (behaviour = b),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
