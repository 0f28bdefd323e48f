import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { createProvider, smsProviderSchema } from '../../src/sms/providers.js';
import { Outbox, type SettledMessage } from '../../src/sms/outbox.js';
import { openStore } from '../../src/store/sqlite.js';
import { startAriServer, type AriServer } from '../helpers/ari-server.js';
import { freePort, serviceDir, startService, type RunningService } from '../helpers/service.js';

/**
 * The admin HTTP surface as an outsider meets it: two listeners, tokens with roles, the Host
 * allow-list, cross-site checks, the audit log, and a store that never keeps a secret. The service
 * runs as its own process against an ARI stand-in (no PBX needed); a failed SMS is left in its store
 * beforehand by an outbox talking to a provider stand-in that echoes the token back.
 */

const SMS_TOKEN = 'sms-provider-token-8f2c1e';
const VIEWER = 'viewer-token-0123456789abcdef';
const ADMIN = 'admin-token-fedcba9876543210';
const ARI_PASSWORD = 'ari-secret';
const TO = '+48601234567';

interface Provider {
  url: string;
  bodies: string[];
  server: Server;
}

/** An SMS API that refuses every message with 400 and echoes the token it got, raw and as JSON fields. */
async function echoingProvider(): Promise<Provider> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      const token = new URLSearchParams(body).get('token') ?? '';
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `invalid token ${token}`, echo: { token }, access_token: 'at-9a8b7c6d5e4f', password: 'hunter2hunter2' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, server };
}

const providerSection = (url: string) => ({
  kind: 'http',
  url: `${url}/send`,
  encoding: 'form',
  body: { token: SMS_TOKEN, phoneNumber: '{to}', message: '{message}' },
  timeout: '2s',
});

let provider: Provider;
let ari: AriServer;
let service: RunningService;
let dir: string;
let mediaPort: number;
let adminPort: number;
let smsId: string;

const admin = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${adminPort}${path}`, init);
const as = (token: string, path: string, init: RequestInit = {}) =>
  admin(path, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });

beforeAll(async () => {
  provider = await echoingProvider();
  ari = await startAriServer({ user: 'call-actions', password: ARI_PASSWORD });
  dir = serviceDir();
  mediaPort = freePort();
  adminPort = freePort();
  const db = join(dir, 'store.db');

  // a failed SMS, written by an outbox as the service's own would
  const store = openStore(`sqlite:${db}`, { secrets: [SMS_TOKEN] });
  const outbox = new Outbox({ store, providers: { echo: createProvider('echo', smsProviderSchema.parse(providerSection(provider.url))) } });
  outbox.start();
  const settled = new Promise<SettledMessage>((r) => outbox.once('settled', r));
  const accepted = await outbox.accept([{ callId: 'call-1', description: 'VIP line reached', provider: 'echo', to: TO, text: 'Call us back' }]);
  smsId = accepted.ids[0]!;
  expect((await settled).status).toBe('failed');
  await outbox.stop({ graceMs: 0 });
  store.close();

  service = await startService({
    dir,
    port: adminPort,
    env: { ARI_PASSWORD, SMS_TOKEN, VIEWER_TOKEN: VIEWER, ADMIN_TOKEN: ADMIN },
    config: `asterisk:
  ari: { url: "${ari.url}", user: call-actions, password: "\${ARI_PASSWORD}", timeout: 1s }
store: sqlite:${db}
http:
  media: { host: 127.0.0.1, port: ${mediaPort} }
  admin: { host: 127.0.0.1, port: ${adminPort} }
  tokens:
    - { name: alice, role: viewer, token: "\${VIEWER_TOKEN}" }
    - { name: bob, role: admin, token: "\${ADMIN_TOKEN}" }
  allowedHosts: [console.example.net]
log: { level: info }
tts: { cacheDir: ${join(dir, 'tts')} }
sms:
  providers:
    echo: { kind: http, url: "${provider.url}/send", encoding: form, timeout: 2s,
            body: { token: "\${SMS_TOKEN}", phoneNumber: "{to}", message: "{message}" } }
stages:
  queue-exit:
    - hangup: {}
`,
  });
}, 60_000);

afterAll(async () => {
  await service?.kill('SIGTERM');
  await ari?.close();
  provider?.server.close();
});

const ENDPOINTS = ['/sms/history', '/hooks/log', '/routes/log', '/salesforce/activities', '/metrics', '/audit/log', '/session', '/live', '/config', '/calls/timeline?callId=call-1', '/stats'];
const ACTIONS = ['/sms/resend', '/hooks/resend', '/admin/reload'];

describe('tokens', () => {
  it('every endpoint answers 401 without a token, and with a wrong one', async () => {
    for (const path of ENDPOINTS) {
      expect((await admin(path)).status, path).toBe(401);
      expect((await as('not-a-token-at-all-xx', path)).status, path).toBe(401);
    }
    for (const path of ACTIONS) {
      const res = await admin(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: smsId }) });
      expect(res.status, path).toBe(401);
    }
  });

  it('a config reload is an admin action: a viewer is refused, an admin reloads and the audit log says who', async () => {
    expect((await as(VIEWER, '/admin/reload', { method: 'POST' })).status).toBe(403);
    const res = await as(ADMIN, '/admin/reload', { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
    const audit = (await (await as(ADMIN, '/audit/log?action=/admin/reload')).json()) as { entries: Array<{ actor: string; detail: string }> };
    expect(audit.entries.map((e) => [e.actor, e.detail])).toEqual([['bob', '200']]);
  });

  it('/health without a token says only whether the service is ready', async () => {
    const res = await admin('/health');
    expect(await res.json()).toEqual({ ok: true });
    const full = (await (await as(VIEWER, '/health')).json()) as Record<string, unknown>;
    expect(full).toHaveProperty('ari');
  });

  it('a viewer sees numbers masked as the log masks them; an admin whole, and that read is audited', async () => {
    const viewer = JSON.stringify(await (await as(VIEWER, `/sms/history?callId=call-1`)).json());
    expect(viewer).not.toContain(TO);
    expect(viewer).toContain('+4860*****67');
    const full = JSON.stringify(await (await as(ADMIN, `/sms/history?callId=call-1`)).json());
    expect(full).toContain(TO);
    const audit = (await (await as(ADMIN, '/audit/log?action=reveal')).json()) as { entries: Array<{ actor: string; target: string }> };
    expect(audit.entries.some((e) => e.actor === 'bob' && e.target === '/sms/history?callId=call-1')).toBe(true);
  });
});

describe('the console', () => {
  it('serves its page and files without a token (they hold no data), from the package', async () => {
    for (const path of ['/', '/login', '/calls/call-1', '/logs/sms', '/flow']) {
      const res = await admin(path);
      expect(res.status, path).toBe(200);
      expect(await res.text()).toContain('<script src="/console/app.js" defer></script>');
    }
    expect((await admin('/console/app.js')).headers.get('content-type')).toMatch(/javascript/);
    expect((await admin('/console/nope.js')).status).toBe(404);
  });

  it('a call page gathers the call\'s SMS with every attempt; a viewer sees the number masked', async () => {
    type T = { sms: Array<{ id: string; recipient: string; attemptLog: unknown[] }>; hooks: unknown[]; routing: unknown[] };
    const t = (await (await as(ADMIN, '/calls/timeline?callId=call-1')).json()) as T;
    expect(t.sms.map((m) => m.id)).toEqual([smsId]);
    expect(t.sms[0]!.recipient).toBe(TO);
    expect(t.sms[0]!.attemptLog.length).toBeGreaterThanOrEqual(1);
    const v = (await (await as(VIEWER, '/calls/timeline?callId=call-1')).json()) as T;
    expect(v.sms[0]!.recipient).toBe('+4860*****67');
    expect((await as(ADMIN, '/calls/timeline')).status).toBe(400);
  });

  it('the config view is for admins, with secrets redacted', async () => {
    expect((await as(VIEWER, '/config')).status).toBe(403);
    const text = await (await as(ADMIN, '/config')).text();
    expect(text).toContain('"queue-exit"');
    for (const s of [SMS_TOKEN, ADMIN, VIEWER, ARI_PASSWORD]) expect(text).not.toContain(s);
  });

  it('/live is a Server-Sent Events stream of the calls in a stage', async () => {
    const ac = new AbortController();
    const res = await as(VIEWER, '/live', { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toMatch(/^event: calls\ndata: \{"now":\d+,"calls":\[\]\}/);
    ac.abort();
  });
});

describe('listeners and paths', () => {
  it('the media listener serves /media/ only', async () => {
    for (const path of ['/sms/history', '/health', '/metrics']) {
      const res = await fetch(`http://127.0.0.1:${mediaPort}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(res.status, path).toBe(404);
    }
    expect((await fetch(`http://127.0.0.1:${mediaPort}/media/${'0'.repeat(32)}.wav`)).status).toBe(404);
  });

  it('a Host not on the allow-list is refused (DNS rebinding); an allowed one is served', async () => {
    const { request } = await import('undici');
    const ask = async (host: string) => (await request(`http://127.0.0.1:${adminPort}/sms/history`, { headers: { host, authorization: `Bearer ${ADMIN}` } })).statusCode;
    expect(await ask('evil.example.com')).toBe(421);
    expect(await ask(`console.example.net:${adminPort}`)).toBe(200);
    expect(await ask(`localhost:${adminPort}`)).toBe(200);
  });

  it('bad paths and queries answer 400 with a message, never 500', async () => {
    const { request } = await import('undici');
    const raw = await request(`http://127.0.0.1:${adminPort}//x/sms/history`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(raw.statusCode).toBe(400);
    for (const q of ['offset=9223372036854775296', 'limit=99999999999999999999', 'since=yesterday', 'until=99999999999999999', 'status=lost', 'nope=1']) {
      const res = await as(ADMIN, `/sms/history?${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error, q).toMatch(/\w/);
    }
    expect((await as(ADMIN, '/routes/log?offset=9223372036854775296')).status).toBe(400);
    expect((await as(ADMIN, '/sms/resend', { method: 'POST', body: '{not json' })).status).toBe(400);
  });
});

describe('re-send and cross-site requests', () => {
  it('a viewer may not re-send; a cookie without the CSRF header or from another origin may not either', async () => {
    const post = (headers: Record<string, string>) => admin('/sms/resend', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ id: smsId }) });
    expect((await post({ authorization: `Bearer ${VIEWER}` })).status).toBe(403);
    const login = await admin('/login', { method: 'POST', body: JSON.stringify({ token: ADMIN }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    const { csrf } = (await login.json()) as { csrf: string };
    expect((await post({ cookie })).status).toBe(403);
    expect((await post({ cookie, 'x-csrf-token': 'forged' })).status).toBe(403);
    expect((await post({ cookie, 'x-csrf-token': csrf, origin: 'http://evil.example.com' })).status).toBe(403);
    expect(provider.bodies).toHaveLength(1);
    // a cookie session reads like a token
    expect((await admin('/session', { headers: { cookie } })).status).toBe(200);
  });

  it('an admin re-sends a failed SMS: one more request to the provider, the same message, audited', async () => {
    const before = provider.bodies.length;
    const res = await as(ADMIN, '/sms/resend', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: smsId }) });
    expect(res.status).toBe(202);
    type Hist = { entries: Array<{ id: string; status: string; attempts: number | unknown[] }> };
    let entry: Hist['entries'][number] | undefined;
    for (let i = 0; i < 100; i++) {
      entry = ((await (await as(ADMIN, '/sms/history?callId=call-1')).json()) as Hist).entries.find((e) => e.id === smsId);
      if (entry?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(entry?.status).toBe('failed');
    const attempts = Array.isArray(entry!.attempts) ? entry!.attempts.length : entry!.attempts;
    expect(attempts).toBe(2);
    expect(provider.bodies.length).toBe(before + 1);
    // a second re-send of the same message while it is failed again is allowed; of one that does not exist, refused
    expect((await as(ADMIN, '/sms/resend', { method: 'POST', body: JSON.stringify({ id: 'no-such-id' }) })).status).toBe(409);
    const audit = (await (await as(ADMIN, '/audit/log?action=/sms/resend')).json()) as { entries: Array<{ actor: string; target: string; detail: string }> };
    expect(audit.entries.map((e) => [e.actor, e.target, e.detail])).toEqual(
      expect.arrayContaining([
        ['bob', smsId, '202'],
        ['bob', 'no-such-id', '409'],
      ]),
    );
  });
});

describe('the store', () => {
  it('keeps no secret: the provider echoed its token, raw and as fields, and no row holds it', async () => {
    await service.settled();
    const db = new Database(join(dir, 'store.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT body FROM sms_attempts WHERE message_id = ?').all(smsId) as Array<{ body: string }>;
      expect(rows.length).toBeGreaterThanOrEqual(1);
      for (const r of rows) {
        expect(r.body).toContain('invalid token [redacted]');
        expect(r.body).not.toContain('at-9a8b7c6d5e4f');
        expect(r.body).not.toContain('hunter2hunter2');
      }
      const dump = (db.prepare("SELECT group_concat(sql, ' ') AS s FROM sqlite_master").get() as { s: string }).s;
      const tables = [...dump.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]!);
      for (const t of tables) expect(JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all()), t).not.toContain(SMS_TOKEN);
    } finally {
      db.close();
    }
    // nor does the log
    expect(JSON.stringify(service.lines)).not.toContain(SMS_TOKEN);
    expect(readFileSync(join(dir, 'store.db')).includes(Buffer.from(ADMIN))).toBe(false);
  });

  it('the database and its WAL and SHM files are 0600', () => {
    for (const f of ['store.db', 'store.db-wal', 'store.db-shm']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
  });
});

describe('config', () => {
  const ARI = 'asterisk:\n  ari: { user: u, password: p }\n';
  const parse = (text: string) => parseConfigText(text, 'cfg.yaml', rootSchema, {});

  it('refuses an admin listener on a non-loopback address without a token, at the line that says so', () => {
    expect(() => parse(`${ARI}http:\n  admin: { host: 0.0.0.0, port: 8091 }\n`)).toThrow(/^cfg\.yaml:4:18: http\.admin\.host: the admin API would listen on 0\.0\.0\.0 with no token/);
    expect(() => parse(`${ARI}http:\n  media: { host: 0.0.0.0 }\n`)).toThrow(/cfg\.yaml:4:18: http\.media\.host/);
    expect(() => parse(`${ARI}http: { host: 10.1.2.3 }\n`)).toThrow(/cfg\.yaml:3:15: http\.host/);
    // a public media listener with the admin paths on loopback is fine, and so is a token
    expect(parse(`${ARI}http:\n  media: { host: 0.0.0.0 }\n  admin: { port: 8091 }\n`).value.http.admin?.host).toBe('127.0.0.1');
    expect(parse(`${ARI}http:\n  host: 0.0.0.0\n  tokens: [{ name: ops, role: admin, token: abcdefghijklmnopqrstu }]\n`).value.http.tokens).toHaveLength(1);
  });

  it('does not mix the one-listener form with media/admin, and wants long tokens', () => {
    expect(() => parse(`${ARI}http:\n  port: 8090\n  admin: { port: 8091 }\n`)).toThrow(/http\.port: http\.port is the one-listener form/);
    expect(() => parse(`${ARI}http:\n  tokens: [{ name: ops, role: admin, token: short }]\n`)).toThrow(/at least 16 characters/);
    expect(() => parse(`${ARI}http:\n  tokens: [{ name: ops, role: root, token: abcdefghijklmnopqrstu }]\n`)).toThrow(/role/);
  });
});
