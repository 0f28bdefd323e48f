import { describe, expect, it } from 'vitest';
import { redactRequest, scrubText } from '../../src/http/redact.js';
import { callFacts, routeRequest } from '../../src/routing/api-request.js';
import { routeSchema } from '../../src/routing/config.js';

/** The request a route config sends for a caller, as routeRequest builds it. */
const requestFor = (cfg: ReturnType<typeof routeSchema.parse>, vars: Record<string, string>) => routeRequest(cfg, callFacts(vars, vars.callId ?? 'c'), vars);

describe('the routing request, read once per route config', () => {
  it('each call sends its own facts and merge fields through the same config', () => {
    const cfg = routeSchema.parse({ url: 'http://api.example/route/{queue}', encoding: 'json', extra: { note: 'from {queue}' }, headers: { 'x-queue': '{queue}' } });
    const a = requestFor(cfg, { caller: '0455556666', called: '700', queue: 'sales', callId: 'c-a' });
    const b = requestFor(cfg, { caller: '0312345678', called: '701', queue: 'vip', callId: 'c-b' });
    expect(a.url).toBe('http://api.example/route/sales');
    expect(b.url).toBe('http://api.example/route/vip');
    expect(b.headers['x-queue']).toBe('vip');
    expect(JSON.parse(a.body!)).toMatchObject({ arayan_no: '0455556666', aranan_no: '700', arama_id: 'c-a', note: 'from sales' });
    expect(JSON.parse(b.body!)).toMatchObject({ arayan_no: '0312345678', aranan_no: '701', arama_id: 'c-b', note: 'from vip' });
  });

  it('a reloaded config (a new object) applies to the next call', () => {
    const vars = { caller: '0455556666', called: '700' };
    const before = routeSchema.parse({ url: 'http://old.example/route', encoding: 'form' });
    expect(requestFor(before, vars)).toMatchObject({ method: 'POST', url: 'http://old.example/route' });
    const after = routeSchema.parse({ url: 'http://new.example/route', encoding: 'query', fields: { caller: 'from' } });
    const built = requestFor(after, vars);
    expect(built.method).toBe('GET');
    expect(built.url).toMatch(/^http:\/\/new\.example\/route\?from=0455556666&/);
    expect(built.body).toBeUndefined();
  });

  it('reports the merge fields the admin wrote that have no value, never the call facts', () => {
    const cfg = routeSchema.parse({ url: 'http://api.example/route', encoding: 'json', fields: { digits: 'keys' }, extra: { agent: '{agentName}' } });
    const built = requestFor(cfg, { caller: '', called: '700' });
    expect(built.missing).toEqual(['agentName']);
    expect(JSON.parse(built.body!)).toMatchObject({ keys: '', arayan_no: '', agent: '' });
  });

  it('a call fact is a value, never read as a template', () => {
    const cfg = routeSchema.parse({ url: 'http://api.example/route', encoding: 'json' });
    const built = requestFor(cfg, { caller: '{called}', called: '700' });
    expect(JSON.parse(built.body!)).toMatchObject({ arayan_no: '{called}' });
  });
});

describe('redaction with a list of secrets', () => {
  it('each list removes its own secrets, in every escaped form, and only those', () => {
    const one = ['s3cr3t&value'];
    const two = ['other-token'];
    const text = `u=${encodeURIComponent('s3cr3t&value')}&t=other-token`;
    expect(scrubText(text, one)).toBe('u=[redacted]&t=other-token');
    expect(scrubText(text, two)).toBe(`u=${encodeURIComponent('s3cr3t&value')}&t=[redacted]`);
    // the same list again, and the request form of it
    expect(scrubText('<a>s3cr3t&amp;value</a>', one)).toBe('<a>[redacted]</a>');
    expect(redactRequest({ method: 'POST', url: 'http://x/?k=other-token', headers: { authorization: 'Bearer x', a: 'other-token' }, body: '{"t":"other-token"}', missing: [] }, two)).toEqual({
      method: 'POST',
      url: 'http://x/?k=[redacted]',
      headers: { authorization: '[redacted]', a: '[redacted]' },
      body: '{"t":"[redacted]"}',
    });
  });
});
