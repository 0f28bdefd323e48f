import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { startAriServer, type AriServer } from '../helpers/ari-server.js';
import { freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';

/** TLS built in: `http.admin.tls` serves HTTPS with the given certificate, and the session cookie is Secure. */
const TOKEN = 'tls-admin-token-0123456789';
let ari: AriServer | undefined;
let service: RunningService | undefined;

afterAll(async () => {
  await service?.kill('SIGKILL');
  await ari?.close();
});

describe('TLS on the admin listener', () => {
  it('answers HTTPS with the configured certificate; plain HTTP gets no answer from it', async () => {
    const dir = serviceDir();
    const cert = join(dir, 'admin.crt');
    const key = join(dir, 'admin.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    ari = await startAriServer({ user: 'call-actions', password: 'pw' });
    const port = freePort();
    service = await startService({
      dir,
      port,
      healthy: false,
      env: { ARI_PASSWORD: 'pw', ADMIN_TOKEN: TOKEN },
      config: `asterisk:
  ari: { url: "${ari.url}", user: call-actions, password: "\${ARI_PASSWORD}", timeout: 1s }
store: sqlite:${join(dir, 'store.db')}
http:
  media: { host: 127.0.0.1, port: ${freePort()} }
  admin: { host: 127.0.0.1, port: ${port}, tls: { cert: ${cert}, key: ${key} } }
  tokens: [{ name: ops, role: admin, token: "\${ADMIN_TOKEN}" }]
tts: { cacheDir: ${join(dir, 'tts')} }
`,
    });
    const dispatcher = new Agent({ connect: { ca: execFileSync('cat', [cert]) } });
    let status = 0;
    for (let i = 0; i < 100 && status === 0; i++) {
      status = await request(`https://localhost:${port}/session`, { dispatcher, headers: { authorization: `Bearer ${TOKEN}` } }).then(
        (r) => r.statusCode,
        () => 0,
      );
      if (status === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const login = await request(`https://localhost:${port}/login`, { dispatcher, method: 'POST', body: JSON.stringify({ token: TOKEN }) });
    expect(String(login.headers['set-cookie'])).toMatch(/; Secure$/);
    await expect(fetch(`http://127.0.0.1:${port}/session`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  }, 30_000);
});
