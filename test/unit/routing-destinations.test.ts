import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../src/routing/config.js';
import { DESTINATION_KEYS, DESTINATION_KINDS } from '../../src/routing/destinations/index.js';

const fallback = (d: unknown) => routeSchema.safeParse({ url: 'http://127.0.0.1:1/route', fallback: d });

describe('destinations as an admin writes them', () => {
  it('a key that only an object inherits (constructor, toString) is an unknown destination', () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
      const r = fallback({ [key]: 'vip' });
      expect(r.success, key).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(new RegExp(`^unknown destination "${key}" \\(known: `));
    }
  });
});

describe('the table of kinds', () => {
  it('a word means one kind: kinds, aliases and the words of an answer do not collide', () => {
    const kinds = DESTINATION_KINDS.map((k) => k.kind);
    expect(new Set(kinds).size).toBe(kinds.length);
    expect(new Set(DESTINATION_KEYS).size).toBe(DESTINATION_KEYS.length);
    const results = DESTINATION_KINDS.flatMap((k) => k.answer?.results ?? []);
    expect(new Set(results).size).toBe(results.length);
    // an answer's word read as a config key must mean the same kind there
    for (const k of DESTINATION_KINDS) {
      for (const word of k.answer?.results ?? []) {
        const other = DESTINATION_KINDS.find((o) => o !== k && (o.kind === word || (o.aliases ?? []).includes(word)));
        expect(other?.kind, word).toBeUndefined();
      }
    }
    expect(results.every((w) => w === w.toLowerCase())).toBe(true);
  });

  it('no two kinds keep their settings in the same place', () => {
    const at = DESTINATION_KINDS.flatMap((k) => (k.settings ? [k.settings.at] : []));
    expect(new Set(at).size).toBe(at.length);
    // routing: has these of its own
    expect(at).not.toContain('routing.schedules');
    expect(at).not.toContain('routing.maxHops');
  });
});
