import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';

// Containers configure the service through the environment, which only holds strings: a ${VAR}
// must be able to fill a number, a boolean or a duration, and to sit unquoted in a flow map.
const BASE = { ARI_USER: 'u', ARI_PASSWORD: 'p' };

function parse(text: string, env: Record<string, string> = {}) {
  return parseConfigText(text, 'cfg.yaml', rootSchema, { ...BASE, ...env }).value;
}

function errorOf(text: string, env: Record<string, string> = {}): string {
  try {
    parse(text, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const ARI = 'asterisk:\n  ari: { user: "${ARI_USER}", password: "${ARI_PASSWORD}" }\n';

describe('${VAR} takes the type of its field', () => {
  it('fills a number from a quoted reference', () => {
    expect(parse(`${ARI}http: { port: "\${PORT}" }\n`, { PORT: '8091' }).http.port).toBe(8091);
  });

  it('fills a number from an unquoted reference in a flow map', () => {
    const c = parse(`${ARI}http: { host: \${HOST}, port: \${PORT} }\n`, { HOST: '127.0.0.2', PORT: '8092' });
    expect(c.http).toMatchObject({ host: '127.0.0.2', port: 8092 });
  });

  it('fills a number from a block map and from a default', () => {
    expect(parse(`${ARI}http:\n  port: \${PORT}\n`, { PORT: '8093' }).http.port).toBe(8093);
    expect(parse(`${ARI}http: { port: \${PORT:-8094} }\n`).http.port).toBe(8094);
  });

  it('fills a boolean', () => {
    const text = 'asterisk:\n  ari: { user: u, password: p, exitOnAuthError: ${EXIT} }\n';
    expect(parse(text, { EXIT: 'true' }).asterisk.ari.exitOnAuthError).toBe(true);
    expect(parse(text, { EXIT: 'false' }).asterisk.ari.exitOnAuthError).toBe(false);
  });

  it('fills a duration, a bare number being seconds as when written in the file', () => {
    expect(parse('asterisk:\n  ari: { user: u, password: p, timeout: ${T} }\n', { T: '7s' }).asterisk.ari.timeout).toBe(7000);
    expect(parse('asterisk:\n  ari: { user: u, password: p, timeout: ${T} }\n', { T: '3' }).asterisk.ari.timeout).toBe(3000);
    expect(parse('asterisk:\n  ari: { user: u, password: p, timeout: 3 }\n').asterisk.ari.timeout).toBe(3000);
  });

  it('leaves a string field a string, even when it looks like a number', () => {
    expect(parse('asterisk:\n  ari: { user: "${U}", password: ${P} }\n', { U: '1234', P: '5678' }).asterisk.ari).toMatchObject({
      user: '1234',
      password: '5678',
    });
  });

  it('keeps the braces of templates and of keys that are not references', () => {
    const c = parse(`${ARI}sms:\n  templates:\n    t: "call {queue} at \${URL}"\n`, { URL: 'https://x.example/{id}' });
    expect(c.sms?.templates?.t).toBe('call {queue} at https://x.example/{id}');
  });

  it('reports a value that does not fit, with file, line, column, field and the reference', () => {
    const msg = errorOf(`${ARI}http: { port: \${PORT} }\n`, { PORT: 'eighty' });
    expect(msg).toBe('cfg.yaml:3:15: http.port: expected a number, got "eighty" from ${PORT}');
  });

  it('reports a boolean that does not fit', () => {
    const msg = errorOf('asterisk:\n  ari: { user: u, password: p, exitOnAuthError: "${EXIT}" }\n', { EXIT: 'maybe' });
    expect(msg).toContain('cfg.yaml:2:49: asterisk.ari.exitOnAuthError: expected a boolean (true or false), got "maybe" from ${EXIT}');
  });

  it('still checks the range after coercing', () => {
    expect(errorOf(`${ARI}http: { port: \${PORT} }\n`, { PORT: '70000' })).toMatch(/^cfg\.yaml:3:15: http\.port: .*65535/);
  });

  it('reports a missing variable where it is written, in a flow map too', () => {
    expect(errorOf(`${ARI}http: { port: \${PORT} }\n`)).toBe('cfg.yaml:3:15: http.port: environment variable PORT is not set');
  });

  it('does not coerce a number written in the file as a string', () => {
    expect(errorOf(`${ARI}http: { port: "8090" }\n`)).toBe('cfg.yaml:3:15: http.port: expected a number, got a string ("8090")');
  });
});
