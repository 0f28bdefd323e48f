import { describe, expect, it } from 'vitest';
import { extract, parseExtractor, parseJsonPath } from '../../src/hooks/extract.js';

const from = (spec: Record<string, string>) => Object.entries(spec).map(([name, s]) => ({ name, from: parseExtractor(s) }));

describe('variable extraction (CA4)', () => {
  it('reads JSON paths: fields, indexes, quoted keys; numbers and booleans as text, objects as JSON', () => {
    const body = JSON.stringify({ data: { id: 42, ok: true, items: [{ name: 'first' }, { name: 'second' }], 'odd key': 'x', nested: { a: [1] } } });
    const r = extract(from({ id: '$.data.id', ok: '$.data.ok', second: '$.data.items[1].name', odd: "$.data['odd key']", nested: '$.data.nested', none: '$.data.items[5].name' }), body);
    expect(r.values).toEqual({ id: '42', ok: 'true', second: 'second', odd: 'x', nested: '{"a":[1]}' });
    expect(r.notFound).toEqual(['none']);
  });

  it('a regex gives its first group, the group named like the variable, or the whole match', () => {
    const body = 'status=OK ticket=12345 ref=AB-9';
    const r = extract(from({ ticket: '/ticket=(\\d+)/', ref: '/ref=(?<ref>[A-Z]+)-(\\d)/', status: '/OK/', missing: '/nope=(\\d+)/' }), body);
    expect(r.values).toEqual({ ticket: '12345', ref: 'AB', status: 'OK' });
    expect(r.notFound).toEqual(['missing']);
  });

  it('a body that is not JSON finds nothing by path, without failing the others', () => {
    const r = extract(from({ id: '$.id', word: '/(\\w+)/' }), '<html>oops</html>');
    expect(r).toEqual({ values: { word: 'html' }, notFound: ['id'] });
  });

  it('refuses malformed paths and patterns with a reason', () => {
    expect(() => parseJsonPath('$.a..b')).toThrow(/expected a field name/);
    expect(() => parseJsonPath('$.a[x]')).toThrow(/expected \[number\]/);
    expect(() => parseExtractor('/(/')).toThrow(/invalid regular expression/);
    expect(() => parseExtractor('plain')).toThrow(/neither/);
  });
});
