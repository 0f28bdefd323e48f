import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { AriPort } from '../../src/asterisk/ari.js';
import { HANDLED_EVENT_TYPES, type StasisStart } from '../../src/asterisk/ari-events.js';
import { readAsteriskEnv } from '../helpers/asterisk.js';

/**
 * The ARI port against the real Asterisk, for what only Asterisk can answer: several variables in
 * one request (ARRAY()) arrive whole whatever they contain, and the application's event filter
 * is in place after the port connects.
 */
const APP = 'call-actions-port-test';
const env = readAsteriskEnv();
const auth = 'Basic ' + Buffer.from(`${env.ariUser}:${env.ariPass}`).toString('base64');
let port: AriPort;
const started: StasisStart[] = [];

async function ari(method: string, path: string): Promise<any> {
  const res = await fetch(`${env.ariUrl.replace(/\/$/, '')}/ari${path}`, { method, headers: { authorization: auth } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  port = new AriPort({ url: env.ariUrl, user: env.ariUser, password: env.ariPass, app: APP, timeoutMs: 3000, log: createLogger({ level: 'silent' }) });
  port.onStasisStart((ev) => started.push(ev));
  port.start();
  await until(() => (port.ready ? true : undefined), 'ARI connected', 10_000);
});
afterAll(async () => {
  await port?.stop();
});

describe('ARI port on the real Asterisk', () => {
  it('asks Asterisk for only the events it reads', async () => {
    const app = await until(async () => {
      const a = await ari('GET', `/applications/${APP}`);
      return a.events_allowed?.length ? a : undefined;
    }, 'the event filter');
    expect(app.events_allowed.map((e: { type: string }) => e.type).sort()).toEqual([...HANDLED_EVENT_TYPES].sort());
    expect(app.events_allowed.map((e: { type: string }) => e.type)).not.toContain('ChannelVarset');
  });

  it('sets several variables in one request, whatever they contain, and clears one with an empty value', async () => {
    const created = await ari('POST', `/channels/create?endpoint=${encodeURIComponent('Local/s@default')}&app=${APP}`);
    try {
      // the channel enters the application a moment after create answers; before that, 409
      await until(() => started.find((e) => e.channel.id === created.id), 'its StasisStart');
      const channel = port.channel(created.id);
      const vars = {
        CA_T_PLAIN: 'queue:vip',
        CA_T_COMMAS: 'call-actions-dest,queue-support,1',
        CA_T_QUOTES: 'PJSIP/+1555@carrier,"x"\\y (z)',
        CA_T_SIGNS: 'a;b|c$d{e}[f]',
        CA_T_UNICODE: 'Zoë 日本',
        CA_T_EMPTY: '',
      };
      await channel.setVar('CA_T_EMPTY', 'left over from an earlier route');
      await channel.setVars(vars);
      for (const [name, value] of Object.entries(vars)) expect(await channel.getVar(name), name).toBe(value);
      await channel.setVars({ CA_T_ONE: 'only, one' });
      expect(await channel.getVar('CA_T_ONE')).toBe('only, one');
    } finally {
      await ari('DELETE', `/channels/${created.id}`).catch(() => undefined);
    }
  });
});
