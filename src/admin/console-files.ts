import { readFileSync } from 'node:fs';

export interface Page {
  status?: number;
  type: string;
  body: string | Buffer;
}

/** Something served without a token: the console's files and its login page hold no data. */
export type PublicFile = (path: string) => Page | undefined;

/**
 * The console's files: plain HTML, JS and CSS shipped in the package (src/admin/console, copied
 * to dist/admin/console by the build), no framework and nothing fetched from the internet. They
 * hold no data, so they are served without a token; the page asks the API, which wants one.
 */
const DIR = new URL('./console/', import.meta.url);
const FILES: Record<string, [string, string]> = {
  '/console/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/console/app.css': ['app.css', 'text/css; charset=utf-8'],
};
/** Every page of the console is the one HTML file; app.js draws the page the path names. */
const PAGES = /^\/(|login|flow|calls\/[^/]+|logs\/(sms|hooks|routing|salesforce|audit))$/;

export function consoleFiles(): PublicFile {
  const cache = new Map<string, Buffer>();
  const read = (name: string) => {
    let b = cache.get(name);
    if (!b) cache.set(name, (b = readFileSync(new URL(name, DIR))));
    return b;
  };
  return (path) => {
    const f = FILES[path];
    if (f) return { type: f[1], body: read(f[0]) };
    if (PAGES.test(path)) return { type: 'text/html; charset=utf-8', body: read('index.html') };
    return undefined;
  };
}
