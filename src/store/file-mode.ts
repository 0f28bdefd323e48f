import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';

/**
 * The database holds phone numbers, SMS texts and what callers keyed: only the service's user
 * may read it. The file is created 0600 before SQLite opens it; SQLite creates the -wal and -shm
 * files with the main file's mode, and files left by an older version are tightened too.
 */
export const DB_FILE_MODE = 0o600;

export function restrictDatabaseFiles(path: string): void {
  if (path === ':memory:') return;
  if (!existsSync(path)) closeSync(openSync(path, 'a', DB_FILE_MODE));
  for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    if (existsSync(f)) chmodSync(f, DB_FILE_MODE);
  }
}
