import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/index.js';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { serviceDir } from '../helpers/service.js';

describe('the public API (package.json main)', () => {
  it('main points at a file the build wrote', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(existsSync(join(REPO_ROOT, pkg.main)), pkg.main).toBe(true);
  });

  it('loadConfig reads the example config with its environment, and names the place of a field', () => {
    const env = Object.fromEntries(
      (readFileSync(join(REPO_ROOT, 'examples/config.yaml'), 'utf8').match(/\$\{([A-Z_]+)/g) ?? []).map((m) => [m.slice(2), `value-of-${m.slice(2).toLowerCase()}`]),
    );
    // URLs keep their defaults (${NAME:-default})
    for (const k of Object.keys(env)) if (k.endsWith('_URL')) delete env[k];
    const { config, secrets, place } = loadConfig(join(REPO_ROOT, 'examples/config.yaml'), env);
    expect(config.asterisk.ari.password).toBe('value-of-ari_password');
    expect(secrets).toContain('value-of-ari_password');
    expect(place(['asterisk', 'ari', 'password'])).toMatch(/examples\/config\.yaml:\d+:\d+$/);
  });

  it('loadConfig throws a ConfigError naming file, line and field', () => {
    const file = join(serviceDir(), 'bad.yaml');
    writeFileSync(file, 'asterisk:\n  ari: { user: u, password: p }\nstages:\n  s:\n    - sayy: hello\n');
    expect(() => loadConfig(file, {})).toThrow(ConfigError);
    expect(() => loadConfig(file, {})).toThrow(/bad\.yaml:5:\d+: stages\.s\[0\]\.sayy: unknown step "sayy"/);
  });
});
