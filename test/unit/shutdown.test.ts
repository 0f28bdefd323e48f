import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, serviceDir, startService } from '../helpers/service.js';

/**
 * SIGTERM with ARI unreachable: nothing to drain (no caller can be served), so the service stops at
 * once, closes its store and flushes its log, and exits 0 — the backoff wait between two connect
 * attempts does not keep it alive, nor does the drain time.
 */
describe('stop with ARI down', () => {
  it('exits 0 within a second or two, with its last log line written', async () => {
    const dir = serviceDir();
    const port = freePort();
    const service = await startService({
      dir,
      port,
      healthy: false,
      env: { ARI_PASSWORD: 'x' },
      // a port nothing listens on: ECONNREFUSED, then backoff up to 10 s
      config: `asterisk:
  ari: { url: "http://127.0.0.1:${freePort()}", user: u, password: "\${ARI_PASSWORD}", timeout: 1s }
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
shutdown: { drain: 30s }
tts: { cacheDir: ${join(dir, 'tts')} }
stages:
  queue-exit:
    - hangup: {}
`,
    });
    try {
      await service.waitForLog((l) => l.msg === 'ARI connect failed', 10_000);
      // into the backoff wait
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      expect(await service.kill('SIGTERM')).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5_000);
      const lines = await service.settled();
      expect(lines.find((l) => l.msg === 'drained')).toMatchObject({ left: 0, ari: 'down' });
      expect(lines.at(-1)?.msg).toBe('call-actions stopped');
    } finally {
      await service.kill('SIGKILL');
    }
  }, 30_000);
});
