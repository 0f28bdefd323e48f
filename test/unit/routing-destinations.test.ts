import { describe, expect, it } from 'vitest';
import { routeSchema } from '../../src/routing/config.js';

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
