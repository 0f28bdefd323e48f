import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/asterisk.js';
import { serviceDir } from '../helpers/service.js';

/**
 * Where a service's memory goes (/stats process.memory, read by the bench's memory run), and what
 * a fresh service does not load: the database driver its config does not name.
 */

/** Which packages a process has loaded after opening `url` with the built openAnyStore (a process of its own: nothing else loaded first). */
function driversLoaded(url: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const { openAnyStore } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/store/open.js'))});
    const store = await openAnyStore(process.argv[1]).catch(() => undefined);
    await store?.close();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify(['pg', 'better-sqlite3'].filter((p) => loaded.some((f) => f.includes(\`/node_modules/\${p}/\`)))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, url], { encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(out) as string[];
}

describe('the store driver', () => {
  it('a SQLite store does not load node-postgres', () => {
    expect(driversLoaded(`sqlite:${join(serviceDir(), 'store.db')}`)).toEqual(['better-sqlite3']);
  });

  it('a PostgreSQL store does not load better-sqlite3', () => {
    // nothing listens on port 1: the first attempt fails, after the driver has been loaded
    expect(driversLoaded('postgres://nobody@127.0.0.1:1/none')).toEqual(['pg']);
  });
});
