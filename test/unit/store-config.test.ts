import { describe, expect, it } from 'vitest';
import { rootSchema } from '../../src/app/config-schema.js';
import { parseConfigText } from '../../src/config/load.js';
import { storeUrl } from '../../src/store/open.js';
import { maskUrl } from '../../src/store/port.js';

const config = (store: string, env: Record<string, string> = {}) =>
  parseConfigText(`asterisk:\n  ari: { user: u, password: p }\nstore: ${store}\n`, 'test.yaml', rootSchema, env);

describe('the store setting', () => {
  it('takes a PostgreSQL URL whose password comes from the environment, and keeps that password a secret', () => {
    const { value, secrets } = config('"postgres://app:${PG_PASSWORD}@db:5432/calls"', { PG_PASSWORD: 'pg-s3cret-pw' });
    expect(value.store).toBe('postgres://app:pg-s3cret-pw@db:5432/calls');
    expect(secrets).toContain('pg-s3cret-pw');
    expect(maskUrl(storeUrl(value.store))).toBe('postgres://app:***@db:5432/calls');
  });

  it('takes { url, pool, statementTimeout }', () => {
    const { value } = config('{ url: "postgresql://app@db/calls", pool: 4, statementTimeout: 5s }');
    expect(value.store).toEqual({ url: 'postgresql://app@db/calls', pool: 4, statementTimeout: 5000 });
    expect(storeUrl(value.store)).toBe('postgresql://app@db/calls');
  });

  it('keeps SQLite the default, and refuses another kind of URL with its place', () => {
    expect(parseConfigText('asterisk:\n  ari: { user: u, password: p }\n', 't.yaml', rootSchema, {}).value.store).toBe('sqlite:./data/call-actions.db');
    expect(() => config('mysql://db/calls')).toThrow(/test\.yaml:3:\d+: store/);
    expect(() => config('{ url: "postgres://db/x", pool: 0 }')).toThrow(/store\.pool|pool/);
  });
});
