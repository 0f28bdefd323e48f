import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, Pool } from '../../src/http/undici.js';

const dist = (p: string) => fileURLToPath(new URL(`../../dist/${p}`, import.meta.url));

describe('undici without its index', () => {
  it('Agent and Pool are the classes undici exports (a release that moves the files fails here)', () => {
    expect(Agent).toBe(undici.Agent);
    expect(Pool).toBe(undici.Pool);
  });

  it('the built service sends a request and reads its answer without loading undici\'s index (fetch, WebSocket, cache)', () => {
    // its own process: this test file imports the index above
    const script = `
      import { createServer } from 'node:http';
      import { createRequire } from 'node:module';
      const { sendRequest } = await import(${JSON.stringify(dist('http/request.js'))});
      const server = createServer((req, res) => res.end('answer to ' + req.url)).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const res = await sendRequest({ method: 'GET', url: 'http://127.0.0.1:' + server.address().port + '/route?x=1', headers: {} }, { timeoutMs: 2000 });
      server.close();
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/node_modules/undici/'));
      console.log(JSON.stringify({ status: res.status, body: res.body, index: loaded.some((f) => f.endsWith('/node_modules/undici/index.js')), fetch: loaded.some((f) => f.includes('/lib/web/fetch/')), agent: loaded.some((f) => f.endsWith('/lib/dispatcher/agent.js')) }));
      process.exit(0);
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dist('.'), encoding: 'utf8' }));
    expect(out).toEqual({ status: 200, body: 'answer to /route?x=1', index: false, fetch: false, agent: true });
  });
});
