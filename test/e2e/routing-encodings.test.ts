import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, xml, type RouteApiStandIn } from '../standins/route-api.js';
import type { AmiLog } from '../helpers/ami-log.js';
import { placeCall } from '../helpers/route-caller.js';
import type { RunningService } from '../helpers/service.js';
import { startRoutingPbx, type RoutingPbx } from '../helpers/routing.js';

/**
 * R2/R3 on the real PBX: for each of the seed's four request methods, the customer's API (a
 * stand-in that reads requests as strictly as a real endpoint) receives exactly the expected bytes
 * for a caller whose caller ID holds &, <, " and non-ASCII characters — in the number (SIP
 * percent-escapes them in the From URI; Asterisk decodes them) and in the display name.
 */

const FROM_URI_USER = '0532&1%3C2%22%C5%9F';
const NUMBER = '0532&1<2"ş';
const NAME = 'Ayşe & <Co> Yılmaz';
const API_KEY = 'rk_live_0123456789abcdef';

let api: RouteApiStandIn;
let service: RunningService;
let ami: AmiLog;
let pbx: RoutingPbx | undefined;

beforeAll(async () => {
  ({ api, ami, service } = pbx = await startRoutingPbx(
    (api) => {
      const route = (encoding: string) => `
    - route:
        url: ${api.endpoint}${encoding === 'query' ? '?v=1' : ''}
        encoding: ${encoding}
        headers: { X-Api-Key: "\${ROUTE_API_KEY}" }
        extra: { test: "1234", ad_soyad: "{callerName}" }
        fallback: { queue: support }`;
      return `stages:
  t501:${route('form')}
  t502:${route('query')}
  t503:${route('json')}
  t504:${route('xml')}
`;
    },
    { ROUTE_API_KEY: API_KEY },
  ));
});
afterAll(() => pbx?.close());

const form = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
const xmlText = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

describe('the stand-in API receives exactly these bytes', () => {
  const cases = [
    {
      encoding: 'form',
      exten: '501',
      method: 'POST',
      contentType: 'application/x-www-form-urlencoded',
      body: (id: string) => `arayan_no=${form(NUMBER)}&aranan_no=501&santral_no=501&arama_id=${id}&tus_bilgisi=&test=1234&ad_soyad=${form(NAME)}`,
      reply: json({ status: 'success', result: 'hangup' }),
    },
    {
      encoding: 'query',
      exten: '502',
      method: 'GET',
      contentType: undefined,
      query: (id: string) => `v=1&arayan_no=${form(NUMBER)}&aranan_no=502&santral_no=502&arama_id=${id}&tus_bilgisi=&test=1234&ad_soyad=${form(NAME)}`,
      body: () => '',
      reply: xml({ status: 'success', result: 'hangup' }),
    },
    {
      encoding: 'json',
      exten: '503',
      method: 'POST',
      contentType: 'application/json; charset=utf-8',
      body: (id: string) => JSON.stringify({ arayan_no: NUMBER, aranan_no: '503', santral_no: '503', arama_id: id, tus_bilgisi: '', test: '1234', ad_soyad: NAME }),
      reply: json({ status: 'success', result: 'hangup' }),
    },
    {
      encoding: 'xml',
      exten: '504',
      method: 'POST',
      contentType: 'application/xml; charset=utf-8',
      body: (id: string) =>
        `<?xml version="1.0" encoding="UTF-8"?><request><arayan_no>${xmlText(NUMBER)}</arayan_no><aranan_no>504</aranan_no><santral_no>504</santral_no><arama_id>${id}</arama_id><tus_bilgisi></tus_bilgisi><test>1234</test><ad_soyad>${xmlText(NAME)}</ad_soyad></request>`,
      reply: xml({ status: 'success', result: 'hangup' }),
    },
  ];

  for (const c of cases) {
    it(`${c.encoding}: ${c.method}, ${c.contentType ?? 'no body'}, the seed's field names, every value escaped for its place`, async () => {
      api.respond = () => c.reply;
      const before = api.requests.length;
      const call = await placeCall({ service: c.exten, from: FROM_URI_USER, fromName: NAME, holdMs: 10_000 });
      expect(call.code, call.stdout.slice(-800)).toBe(0);
      // the API answered hangup: the PBX, not the caller, ended the call
      expect(call.hungUpBy).toBe('pbx');
      const reqs = api.requests.slice(before);
      expect(reqs).toHaveLength(1);
      const req = reqs[0]!;
      const entered = (await service.settled()).filter((l) => l.msg === 'stage entered' && l.stage === `t${c.exten}`).at(-1)!;
      const id = String(entered.callId);
      expect(req.method).toBe(c.method);
      expect(req.path).toBe('/route');
      expect(req.headers['content-type']).toBe(c.contentType);
      expect(req.headers['x-api-key']).toBe(API_KEY);
      expect(req.raw.toString('utf8')).toBe(c.body(id));
      if (c.query) expect(req.query).toBe(c.query(id));
      // what the API reads back is the caller ID as Asterisk has it
      expect(req.fields).toMatchObject({ arayan_no: NUMBER, ad_soyad: NAME, arama_id: id, aranan_no: c.exten });
      // and the answer (JSON or XML) was acted on
      const routed = await service.waitForLog((l) => l.msg === 'routed' && l.callId === id);
      expect(routed.destination).toBe('hangup');
    });
  }

  it('the routing log keeps each request and answer, without the API key', async () => {
    const page = (await (await fetch(`${service.url}/routes/log?limit=10`)).json()) as { entries: Array<Record<string, unknown>> };
    expect(page.entries.map((e) => e.encoding)).toEqual(['form', 'query', 'json', 'xml']);
    expect(page.entries.map((e) => e.method)).toEqual(['POST', 'GET', 'POST', 'POST']);
    expect(page.entries.every((e) => e.outcome === 'routed' && e.decision === 'hangup' && e.httpStatus === 200)).toBe(true);
    expect(String(page.entries[1]!.url)).toContain(`arayan_no=${form(NUMBER)}`);
    expect(String(page.entries[3]!.responseBody)).toContain('<status>success</status>');
    expect(JSON.stringify(page)).not.toContain(API_KEY);
    expect(JSON.stringify((await service.settled()))).not.toContain(API_KEY);
  });
});
