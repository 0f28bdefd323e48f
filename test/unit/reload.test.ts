import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { freePort, serviceDir, startService } from '../helpers/service.js';

/**
 * `call-actions reload` and SIGHUP without a PBX (ARI unreachable): a broken file is refused with
 * the same file:line:col lines `validate` prints, exit 2, and the service goes on with the old one;
 * a valid one is applied (its stages listed), and a changed section that needs a restart is named.
 * What a reload does to calls is test/e2e/reload.test.ts.
 */
const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/cli.js');

function config(dir: string, port: number, ariPort: number, stages: string, extra = ''): string {
  return `asterisk:
  ari: { url: "http://127.0.0.1:${ariPort}", user: u, password: "\${ARI_PASSWORD}", timeout: 1s }
store: sqlite:${join(dir, 'store.db')}
http: { host: 127.0.0.1, port: ${port} }
tts: { cacheDir: ${join(dir, 'tts')} }
${extra}stages:
${stages}`;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ARI_PASSWORD: 'x' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('reload', () => {
  it('refuses a broken file (exit 2, file:line:col), applies a valid one, on the CLI and on SIGHUP', async () => {
    const dir = serviceDir();
    const port = freePort();
    const ariPort = freePort();
    const service = await startService({ dir, port, healthy: false, env: { ARI_PASSWORD: 'x' }, config: config(dir, port, ariPort, '  one:\n    - hangup: {}\n') });
    try {
      await service.waitForLog((l) => l.msg === 'call-actions started');
      const file = service.configFile;

      // a step that does not exist, on line 10
      writeFileSync(file, config(dir, port, ariPort, '  one:\n    - hangup: {}\n  two:\n    - shout: loud\n'));
      const validate = await cli(['validate', file]);
      expect(validate.code).toBe(2);
      const refused = await cli(['reload', '--config', file]);
      expect(refused.code).toBe(2);
      const place = `${file}:10:14: stages.two[0].shout: unknown step "shout"`;
      expect(validate.stderr).toContain(place);
      expect(refused.stderr).toContain(validate.stderr.trim());
      expect((await service.waitForLog((l) => l.msg === 'config reload refused: the running config stays')).error).toContain(place);

      // a YAML error as well
      writeFileSync(file, config(dir, port, ariPort, '  one:\n    - hangup: {}\n   bad indent: [\n'));
      const yamlRefused = await cli(['reload', '--config', file]);
      expect(yamlRefused.code).toBe(2);
      expect(yamlRefused.stderr).toContain(`${file}:`);

      // still serving, on the old config
      const health = await fetch(`${service.url}/health`);
      expect((await health.json()) as object).toHaveProperty('calls', 0);
      expect(service.lines.some((l) => l.msg.startsWith('config reloaded'))).toBe(false);

      // valid: applied; the store moved, which waits for a restart
      writeFileSync(file, config(dir, port, ariPort, '  one:\n    - hangup: {}\n  two:\n    - continue: {}\n').replace('store.db', 'other.db'));
      const applied = await cli(['reload', '--config', file]);
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toContain('reloaded (2 stages: one, two)');
      expect(applied.stdout).toContain('applied at the next restart: store');

      // SIGHUP does the same
      writeFileSync(file, config(dir, port, ariPort, '  three:\n    - hangup: {}\n'));
      service.child.kill('SIGHUP');
      const hup = await service.waitForLog((l) => l.msg === 'config reloaded' && Array.isArray(l.stages) && (l.stages as string[]).includes('three'));
      expect(hup.stages).toEqual(['three']);
      expect(service.child.exitCode).toBeNull();
      // only POST changes anything
      expect((await fetch(`${service.url}/admin/reload`)).status).toBe(405);
      expect(await service.kill('SIGTERM')).toBe(0);
    } finally {
      await service.kill('SIGKILL');
    }
  }, 60_000);
});
