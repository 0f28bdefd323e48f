import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The demo's SMS provider: the seed 000 API (POST /p1/api/mt.json, form fields token, clientId,
 * smsCode, message, phoneNumber) answering every correct request with success, so that
 * `call-actions demo` shows a real request without an account. The tests' stand-in, with its
 * failure modes, is test/standins/aossms.ts.
 */
export interface DemoProvider {
  readonly endpoint: string;
  readonly credentials: { token: string; clientId: string; smsCode: string };
  readonly requests: Array<{ at: number; path: string; fields: Record<string, string> }>;
  close(): Promise<void>;
}

const FIELDS = ['token', 'clientId', 'smsCode', 'message', 'phoneNumber'];

export interface DemoProviderOptions {
  /** 127.0.0.1 unless given: in a container it must be 0.0.0.0 to be reached from the service's */
  host?: string;
  port?: number;
  credentials?: Partial<DemoProvider['credentials']>;
  /** answer GET /requests with what was received (token left out), for a test outside the process */
  listRequests?: boolean;
  onRequest?: (r: DemoProvider['requests'][number]) => void;
}

export async function startDemoProvider(opts: DemoProviderOptions = {}): Promise<DemoProvider> {
  const credentials = { token: randomBytes(12).toString('hex'), clientId: 'demo', smsCode: '0001', ...opts.credentials };
  const requests: DemoProvider['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fields = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const answer = (status: number, body: object) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (opts.listRequests && req.method === 'GET' && req.url === '/requests') {
        return answer(200, requests.map(({ fields: { token: _token, ...rest }, ...r }) => ({ ...r, fields: rest })));
      }
      if (req.method !== 'POST' || req.url !== '/p1/api/mt.json') return answer(404, { responseCode: 404, responseMessage: 'not found' });
      const missing = FIELDS.filter((f) => !fields[f]);
      if (missing.length) return answer(400, { responseCode: 400, responseMessage: `missing ${missing.join(', ')}` });
      if (fields.token !== credentials.token) return answer(401, { responseCode: 401, responseMessage: 'bad token' });
      const entry = { at: Date.now(), path: req.url, fields };
      requests.push(entry);
      opts.onRequest?.(entry);
      answer(200, { responseCode: 200, responseMessage: 'OK', phoneNumber: fields.phoneNumber });
    });
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/p1/api/mt.json`,
    credentials,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
