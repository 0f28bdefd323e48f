import { afterEach, describe, expect, it } from 'vitest';
import { AriError, AriPort } from '../../src/asterisk/ari.js';
import { createLogger } from '../../src/log.js';
import { startWsPbx, type Answer, type Sent, type WsPbx } from '../helpers/ari-ws-pbx.js';

/**
 * The port sends its REST requests over the event WebSocket when Asterisk answers there (20.14.0,
 * 21.9.0, 22.4.0 and later), and over HTTP when it does not, when the socket is down, and for the
 * requests that wait for the channel's own thread. Whichever way, callers get the same answers
 * and errors, and nothing waits for an answer that can no longer come.
 */
const APP = 'call-actions';

/** What the stand-in answers for the channel requests: C1 is in Stasis, GONE has hung up, BUSY is not ours. */
function channels(req: Sent): Answer | undefined {
  const [kind, id, op] = req.path.split('/');
  if (kind !== 'channels' || !id) return undefined;
  if (id === 'GONE') return { status: 404, reason: 'Not Found', body: JSON.stringify({ message: 'Channel not found' }) };
  if (id === 'BUSY') return { status: 409, reason: 'Conflict', body: JSON.stringify({ message: 'Channel not in Stasis application' }) };
  if (req.method === 'GET' && op === 'variable') return { status: 200, reason: 'OK', body: JSON.stringify({ value: `value of ${req.query.variable}` }) };
  return { status: 204, reason: 'No Content' };
}

let pbx: WsPbx | undefined;
let port: AriPort | undefined;
afterEach(async () => {
  await port?.stop();
  await pbx?.close();
  port = pbx = undefined;
});

async function until(fn: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function connect(rest: boolean, timeoutMs = 2000): Promise<{ pbx: WsPbx; port: AriPort }> {
  pbx = await startWsPbx({ rest, app: APP, answer: channels });
  port = new AriPort({ url: pbx.url, user: 'u', password: 'p', app: APP, timeoutMs, log: createLogger({ level: 'silent' }), reconnect: { initialMs: 50, maxMs: 50 } });
  port.start();
  await until(() => port!.ready, 'connected');
  return { pbx, port };
}

const channelRequests = (list: string[]) => list.filter((r) => r.includes('/channels/'));

describe('ARI port on an Asterisk that answers REST over the WebSocket', () => {
  it('sends its requests over the WebSocket, with the answers and errors HTTP gave', async () => {
    const { pbx, port } = await connect(true);
    await until(() => port.restOverWebSocket, 'REST over the WebSocket');
    // the filter lets the answers through: without RESTResponse in it, Asterisk drops every one
    const filter = pbx.sent.find((s) => s.path.endsWith('/eventFilter'))!.body as { allowed: Array<{ type: string }> };
    expect(filter.allowed.map((e) => e.type)).toContain('RESTResponse');

    const c1 = port.channel('C1');
    await c1.continueInDialplan({ context: 'call-actions-dest', extension: 'queue support', priority: 1 });
    expect(await c1.getVar('CHANNEL(linkedid)')).toBe('value of CHANNEL(linkedid)');
    await c1.hangup('normal');
    // gone is not an error where the callers rely on it
    await port.channel('GONE').continueInDialplan();
    await port.channel('GONE').hangup();
    expect(await port.channel('GONE').getVar('X')).toBeUndefined();
    const err = await port.channel('BUSY').continueInDialplan().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AriError);
    expect((err as AriError).status).toBe(409);
    expect((err as AriError).message).toBe('ARI POST /channels/BUSY/continue: 409 Channel not in Stasis application');

    expect(channelRequests(pbx.ws)).toEqual([
      'POST /channels/C1/continue',
      'GET /channels/C1/variable',
      'DELETE /channels/C1',
      'POST /channels/GONE/continue',
      'DELETE /channels/GONE',
      'GET /channels/GONE/variable',
      'POST /channels/BUSY/continue',
    ]);
    expect(channelRequests(pbx.http)).toEqual([]);
    // the query string arrives whole (a space and a comma in it)
    expect(pbx.sent.find((s) => s.path === 'channels/C1/continue')!.query).toEqual({ context: 'call-actions-dest', extension: 'queue support', priority: '1' });
    expect(pbx.sent.find((s) => s.path === 'channels/C1' && s.method === 'DELETE')!.query).toEqual({ reason: 'normal' });
  });

  it('answers and sets variables over HTTP: those wait for the channel, and would hold up every request behind them', async () => {
    const { pbx, port } = await connect(true);
    await until(() => port.restOverWebSocket, 'REST over the WebSocket');
    const c1 = port.channel('C1');
    await c1.answer();
    await c1.setVars({ A: '1', B: 'x,y' });
    await c1.continueInDialplan();
    expect(channelRequests(pbx.http)).toEqual(['POST /channels/C1/answer', 'POST /channels/C1/variable']);
    expect(channelRequests(pbx.ws)).toEqual(['POST /channels/C1/continue']);
  });

  it('fails a request in flight at once when the WebSocket closes, and sends the next over HTTP', async () => {
    const { pbx, port } = await connect(true, 5000);
    await until(() => port.restOverWebSocket, 'REST over the WebSocket');
    pbx.hold.add('POST /channels/C1/continue');
    const started = Date.now();
    const inFlight = port.channel('C1').continueInDialplan().catch((e: unknown) => e);
    await until(() => pbx.ws.includes('POST /channels/C1/continue'), 'the request reached Asterisk');
    (await pbx.socket(0)).terminate();
    const err = (await inFlight) as Error & { code?: string };
    expect(Date.now() - started).toBeLessThan(1000); // not the 5 s timeout
    expect(err.message).toMatch(/^ARI POST \/channels\/C1\/continue: the WebSocket closed before the answer came/);
    // what undici reports for an HTTP connection lost mid-request: callers treat both alike
    expect(err.code).toBe('UND_ERR_SOCKET');

    // reconnecting (or reconnected, its probe not yet answered): HTTP carries the request
    expect(port.restOverWebSocket).toBe(false);
    await port.channel('C1').continueInDialplan();
    expect(channelRequests(pbx.http)).toEqual(['POST /channels/C1/continue']);
    pbx.release();
  });

  it('fails a request in flight when the port stops', async () => {
    const { pbx, port: p } = await connect(true, 5000);
    await until(() => p.restOverWebSocket, 'REST over the WebSocket');
    pbx.hold.add('GET /channels/C1/variable');
    const inFlight = p.channel('C1').getVar('X').catch((e: unknown) => e);
    await until(() => pbx.ws.includes('GET /channels/C1/variable'), 'the request reached Asterisk');
    const started = Date.now();
    await p.stop();
    port = undefined;
    expect(((await inFlight) as { code?: string }).code).toBe('UND_ERR_SOCKET');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('sums the time a channel\'s requests waited on Asterisk, answered or timed out, and only that channel\'s', async () => {
    const { pbx, port } = await connect(true, 300);
    await until(() => port.restOverWebSocket, 'REST over the WebSocket');
    const c1 = port.channel('C1');
    const other = port.channel('C2');
    expect(c1.restMs).toBe(0);
    pbx.hold.add('POST /channels/C1/continue');
    const answered = c1.continueInDialplan();
    await until(() => pbx.ws.includes('POST /channels/C1/continue'), 'the request reached Asterisk');
    await new Promise((r) => setTimeout(r, 120));
    pbx.release();
    await answered;
    expect(c1.restMs).toBeGreaterThanOrEqual(120);
    expect(c1.restMs).toBeLessThan(300);
    await other.continueInDialplan(); // not held: answered at once
    expect(other.restMs).toBeLessThan(c1.restMs);
    // one that got no answer waited its whole deadline
    const before = c1.restMs;
    await c1.hangup().catch(() => undefined);
    pbx.hold.add('DELETE /channels/C1');
    await c1.hangup().catch((e: unknown) => e);
    expect(c1.restMs - before).toBeGreaterThanOrEqual(290);
  });

  it('times a request out like an HTTP one, and drops its late answer', async () => {
    const { pbx, port } = await connect(true, 300);
    await until(() => port.restOverWebSocket, 'REST over the WebSocket');
    pbx.hold.add('POST /channels/C1/continue');
    const err = (await port.channel('C1').continueInDialplan().catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('TimeoutError');
    expect(err.message).toBe('ARI POST /channels/C1/continue timed out after 300 ms');
    pbx.hold.clear();
    pbx.release();
    // the late answer settles nothing, and the socket goes on carrying requests
    expect(await port.channel('C1').getVar('Y')).toBe('value of Y');
    expect(port.restOverWebSocket).toBe(true);
    expect(channelRequests(pbx.http)).toEqual([]);
  });
});

describe('ARI port on an Asterisk without REST over the WebSocket (before 20.14.0 / 21.9.0 / 22.4.0)', () => {
  it('sends its requests over HTTP, none into the silence, before and after the probe goes unanswered', async () => {
    const { pbx, port } = await connect(false, 300);
    const c1 = port.channel('C1');
    await c1.continueInDialplan();
    await new Promise((r) => setTimeout(r, 500)); // past the probe's patience (timeoutMs)
    expect(port.restOverWebSocket).toBe(false);
    const started = Date.now();
    expect(await c1.getVar('X')).toBe('value of X');
    await c1.hangup();
    expect(Date.now() - started).toBeLessThan(300);
    expect(channelRequests(pbx.http)).toEqual(['POST /channels/C1/continue', 'GET /channels/C1/variable', 'DELETE /channels/C1']);
    // the WebSocket carried the probe alone
    expect(pbx.received.map((m) => JSON.parse(m))).toEqual([{ type: 'RESTRequest', request_id: expect.any(String), method: 'GET', uri: 'asterisk/ping' }]);
  });
});

describe('an ARI request query', () => {
  // plain words are joined by hand; the bytes must be those URLSearchParams writes, whatever the values
  it('is written as URLSearchParams writes it', async () => {
    const { queryString } = await import('../../src/asterisk/ari.js');
    const cases: Array<Record<string, string>> = [
      {},
      { context: 'bench-dest', extension: '123', priority: '1' },
      { variable: 'CHANNEL(linkedid)' },
      { variable: 'CALLERID(name)', value: 'Yamada Taro' },
      { media: 'sound:/tmp/x y', label: "a~b!c'd(e)*f" },
      { reason: 'normal', 'a b': '+81 90&x=1', e: '', '': 'v' },
      { k: '山田', j: '\ud800', q: '%41' },
    ];
    for (const q of cases) {
      const expected = new URLSearchParams(q).toString();
      expect(queryString(q), JSON.stringify(q)).toBe(expected ? `?${expected}` : '');
    }
  });
});
