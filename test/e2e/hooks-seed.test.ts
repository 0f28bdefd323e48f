import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { aossmsEnv, freePort, serviceDir, startWithConfig, type RunningService } from '../helpers/service.js';
import { runSipp } from '../helpers/sipp.js';
import { ok, quota300, startAossms, type AossmsStandIn } from '../standins/aossms.js';

/**
 * BIZTEL's own call-action example (seed 000, "2.3 API連携設定"), end to end: a real SIP caller
 * waits in queue "support" of the real Asterisk, presses #, and the hook posts the seed's form
 * body to a stand-in of the seed's SMS provider, which answers 300 (quota) twice and then
 * succeeds. The settings are the seed's table, one to one.
 */
const run = promisify(execFile);
const CALLER = '+819012345678';
const DID = '+81501234567';
const OTHER_DID = '+81509876543';
const MESSAGE = 'SMSで送信するメッセージ';

let provider: AossmsStandIn;
let service: RunningService | undefined;

function sections(): string {
  return `stages:
  queue-exit:
    - hangup: {}
hooks:
  - name: seed-sms                 # コールアクション: 絶対リーチ! SMS
    on: queue.key-exit             # イベント種別: コールセンターキューダイヤル受付
    numbers: ["${DID}"]            # 連携対象電話番号
    order: 1                       # 実行順
    request:
      url: ${provider.endpoint}
      method: POST
      headers: { Content-Type: application/x-www-form-urlencoded }
      body: "token=\${AOS_TOKEN}&clientId=\${AOS_CLIENT_ID}&smsCode=\${AOS_SMS_CODE}&message=${MESSAGE}&phoneNumber={TEL}"
      timeout: 10                  # タイムアウト判定
    error: { match: "/300/" }      # エラー判定パターン
    retry: { count: 2, interval: 5 }   # リトライ回数, リトライ間隔(秒)
    memo: the seed's example
`;
}

async function start(opts: { dir?: string; port?: number } = {}): Promise<RunningService> {
  service = await startWithConfig(sections(), { ...opts, env: aossmsEnv(provider) });
  return service;
}

async function hookLog(s: RunningService, query: string): Promise<{ total: number; entries: Array<Record<string, any>> }> {
  const res = await fetch(`${s.url}/hooks/log${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as never;
}

const pressPound = (did: string) =>
  runSipp({ scenario: 'queue_pound_2833', service: did, from: CALLER, fromName: 'Queue Caller', timeoutMs: 40_000 });

beforeAll(async () => {
  provider = await startAossms();
});
afterAll(async () => {
  await provider.close();
});
afterEach(async () => {
  await service?.kill('SIGTERM');
  service = undefined;
});

describe("seed 000's call action: queue # → SMS API", () => {
  it('posts the seed body with {TEL} = the caller; 300 twice then success: 3 attempts 5 s apart, every one logged', async () => {
    provider.enqueue(quota300, quota300, ok);
    const s = await start();
    const before = provider.requests.length;
    const call = await pressPound(DID);
    expect(call.code, call.stdout + call.stderr).toBe(0);

    await s.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'seed-sms', 25_000);
    const requests = provider.requests.slice(before);
    expect(requests).toHaveLength(3);
    for (const r of requests) {
      expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(r.fields).toEqual({ ...provider.credentials, message: MESSAGE, phoneNumber: CALLER });
    }
    const gaps = [requests[1]!.at - requests[0]!.at, requests[2]!.at - requests[1]!.at];
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(4950);
      expect(g).toBeLessThan(6500);
    }
    expect(requests.map((r) => r.answered?.body ?? '')).toEqual([
      expect.stringContaining('"responseCode":300'),
      expect.stringContaining('"responseCode":300'),
      expect.stringContaining('"responseCode":200'),
    ]);
    // one idempotency key for the three tries of one run
    expect(new Set(requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);

    const entered = (await s.settled()).find((l) => l.msg === 'stage entered')!;
    const log = await hookLog(s, `?callId=${encodeURIComponent(String(entered.callId))}`);
    expect(log.total).toBe(1);
    const entry = log.entries[0]!;
    expect(entry).toMatchObject({ hook: 'seed-sms', event: 'queue.key-exit', status: 'ok', attempts: 3, mode: 'queued' });
    expect(entry.vars).toMatchObject({ TEL: CALLER, queue: 'support', key: '#', did: DID });
    expect(entry.attemptLog.map((a: any) => [a.attempt, a.outcome, a.reason, a.response.status])).toEqual([
      [1, 'retry', 'error-match', 200],
      [2, 'retry', 'error-match', 200],
      [3, 'ok', 'http-200', 200],
    ]);
    expect(entry.attemptLog[0].response.body).toContain('300');
    expect(entry.attemptLog[0].request.body).toContain('token=[redacted]');
    expect(entry.attemptLog[0].request.body).toContain(`phoneNumber=${encodeURIComponent(CALLER)}`);
    expect(entry.attemptLog[2].startedAt - entry.attemptLog[1].startedAt).toBeGreaterThanOrEqual(4950);

    // the same log from the command line, and no secret anywhere in it or in the service's own log
    const cli = await run(process.execPath, [join(REPO_ROOT, 'dist/cli.js'), 'hooks', 'log', '--config', s.configFile, '--hook', 'seed-sms'], {
      env: { ...process.env, ...aossmsEnv(provider), ARI_USER: 'x', ARI_PASSWORD: 'x', AMI_USER: 'x', AMI_SECRET: 'x' },
    });
    expect(cli.stdout).toMatch(/queue\.key-exit\tseed-sms\tok\tattempts=3/);
    expect(cli.stdout.match(/^ {2}#\d/gm)).toHaveLength(3);
    for (const text of [cli.stdout, JSON.stringify(log), JSON.stringify((await s.settled()))]) expect(text).not.toContain(provider.credentials.token);
  });

  it('a call to a DID not in the hook\'s numbers triggers nothing', async () => {
    const s = await start();
    const before = provider.requests.length;
    const call = await pressPound(OTHER_DID);
    expect(call.code, call.stdout).toBe(0);
    const entered = await s.waitForLog((l) => l.msg === 'stage entered');
    await s.waitForLog((l) => l.msg === 'hung up');
    // the key exit was seen (AMI and the stage both report it), yet nothing was queued
    await new Promise((r) => setTimeout(r, 1500));
    expect(provider.requests.length).toBe(before);
    expect((await hookLog(s, `?callId=${encodeURIComponent(String(entered.callId))}`)).total).toBe(0);
    expect((await s.settled()).some((l) => l.msg === 'hooks queued')).toBe(false);
  });

  it('the service is killed during the retry wait: after restart the remaining attempts run, none is repeated', async () => {
    provider.enqueue(quota300, quota300, ok);
    const dir = serviceDir();
    const port = freePort();
    const s = await start({ dir, port });
    const before = provider.requests.length;
    const call = await pressPound(DID);
    expect(call.code).toBe(0);
    await s.waitForLog((l) => l.msg === 'hook attempt failed, will retry' && l.attempt === 1, 15_000);
    // inside the 5 s wait before attempt 2
    expect(await s.kill('SIGKILL')).toBeNull();
    service = undefined;
    expect(provider.requests.length - before).toBe(1);

    const again = await start({ dir, port });
    await again.waitForLog((l) => l.msg === 'hook ok' && l.hook === 'seed-sms', 20_000);
    const requests = provider.requests.slice(before);
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(4950);
    const log = await hookLog(again, '?hook=seed-sms');
    expect(log.total).toBe(1);
    expect(log.entries[0]!.attemptLog.map((a: any) => [a.attempt, a.outcome])).toEqual([[1, 'retry'], [2, 'retry'], [3, 'ok']]);
    // and nothing more goes out afterwards
    await new Promise((r) => setTimeout(r, 1500));
    expect(provider.requests.length - before).toBe(3);
  });
});
