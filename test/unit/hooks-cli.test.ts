import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { startHookReceiver, type HookReceiver } from '../helpers/hook-receiver.js';

/** `call-actions hooks test` (the dry run) as an admin runs it: the built CLI, a config file. */
const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/cli.js');
const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p', AOS_TOKEN: 'tok-very-secret' };

let rx: HookReceiver;
let file: string;

beforeAll(async () => {
  rx = await startHookReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'hooks-cli-'));
  file = join(dir, 'cfg.yaml');
  writeFileSync(
    file,
    `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
store: sqlite:${join(dir, 'db.sqlite')}
sms: { defaultCountry: JP }
hooks:
  - name: sms
    on: queue.key-exit
    numbers: ["+81312345678"]
    when: { value: "{queue}", match: "/^support$/" }
    request:
      url: ${rx.url}/mt.json
      headers: { Content-Type: application/x-www-form-urlencoded }
      body: "token=\${AOS_TOKEN}&message=Hi {queue}&phoneNumber={TEL}"
    extract: { code: "$.responseCode" }
    error: { match: "/300/" }
    retry: { count: 2, interval: 5 }
  - { name: down, on: call.end, request: { url: "${rx.url}/down" } }
`,
  );
  rx.setDefault('/mt.json', { body: '{"responseCode":200}' });
  rx.setDefault('/down', { status: 503, body: 'maintenance' });
});
afterAll(async () => {
  await rx.close();
});

const cli = (...args: string[]) =>
  run(process.execPath, [CLI, 'hooks', ...args, '--config', file], { env: { ...process.env, ...ENV } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('call-actions hooks test', () => {
  it('renders the request for a made-up call and sends nothing', async () => {
    const before = rx.requests.length;
    const r = await cli('test', 'sms', '--caller', '+819012345678', '--called', '03-1234-5678');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hook "sms" on queue.key-exit');
    expect(r.stdout).toContain('condition: "{queue}" → "support" matches /^support$/');
    expect(r.stdout).toContain(`POST ${rx.url}/mt.json`);
    expect(r.stdout).toContain('Content-Type: application/x-www-form-urlencoded');
    expect(r.stdout).toMatch(/idempotency-key: dry-run-/);
    expect(r.stdout).toContain('token=[redacted]&message=Hi support&phoneNumber=%2B819012345678');
    expect(r.stdout).toContain('(not sent; add --send to send it once)');
    // 03-1234-5678 with JP is the hook's +81312345678: no "not in numbers" note
    expect(r.stdout).not.toContain('not in the hook');
    expect(r.stdout).not.toContain('tok-very-secret');
    expect(rx.requests.length).toBe(before);
  });

  it('--var overrides a sample and shows a condition that fails; another DID gets a note', async () => {
    const r = await cli('test', 'sms', '--caller', '+819012345678', '--called', '+81509999999', '--var', 'queue=sales');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('condition: "{queue}" → "sales" does NOT match /^support$/');
    expect(r.stdout).toContain("the called number +81509999999 is not in the hook's numbers");
  });

  it('--send sends once and shows the answer, its classification and what it extracted', async () => {
    const before = rx.to('/mt.json').length;
    const r = await cli('test', 'sms', '--caller', '+819012345678', '--called', '+81312345678', '--send');
    expect(r.code).toBe(0);
    expect(rx.to('/mt.json').length - before).toBe(1);
    const sent = rx.to('/mt.json').at(-1)!;
    expect(sent.parsed).toEqual({ kind: 'form', fields: { token: 'tok-very-secret', message: 'Hi support', phoneNumber: '+819012345678' } });
    expect(r.stdout).toMatch(/answer: HTTP 200 in \d+ ms → ok \(http-200\)/);
    expect(r.stdout).toContain('extracted: code=200');

    const down = await cli('test', 'down', '--caller', '+819012345678', '--called', '100', '--send');
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/answer: HTTP 503 .* → retry \(http-503\)/);
    expect(down.stdout).toContain('a live run would retry (0 retries');
  });

  it('names the hooks there are when asked for one that is not', async () => {
    const r = await cli('test', 'nope', '--caller', '1', '--called', '2');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no hook named "nope" (hooks: sms, down)');
  });

  it('hooks log answers from the store, and refuses an unknown status', async () => {
    const ok = await cli('log', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ total: 0, entries: [] });
    const bad = await cli('log', '--status', 'done');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--status: unknown done (known: pending, sending, ok, failed, skipped)');
  });
});
