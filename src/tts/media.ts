import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { isTtsId, type TtsCache } from './cache.js';

export interface MediaHandlerOptions {
  cache: Pick<TtsCache, 'path'>;
  /** URL path under which audio is served; must start and end with '/'. */
  prefix?: string;
}

export type MediaHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * A file's content never changes for its id (the id is a hash of what was spoken), so Asterisk's
 * res_http_media_cache may keep it for a day; it caches by URL only when both max-age and an
 * ETag are present, otherwise it fetches the file again for every playback.
 */
const CACHE_CONTROL = 'public, max-age=86400, immutable';
const NAME_RE = /^([0-9a-f]{32})\.wav$/;

/**
 * Serves `<prefix><id>.wav` from the TTS cache. Returns false for URLs outside the prefix so the
 * caller's server can route them elsewhere. The raw URL is matched without decoding or dot-segment
 * normalisation, so `..`, `%2e%2e` and `%2f` can never form another path: anything that is not
 * exactly an id is a 404.
 */
export function createMediaHandler(opts: MediaHandlerOptions): MediaHandler {
  const prefix = opts.prefix ?? '/media/';
  if (!prefix.startsWith('/') || !prefix.endsWith('/')) {
    throw new TypeError(`media prefix must start and end with '/': ${prefix}`);
  }
  const { cache } = opts;

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    if (!pathname.startsWith(prefix)) return false;

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 }).end();
      return true;
    }
    const id = NAME_RE.exec(pathname.slice(prefix.length))?.[1];
    const file = id === undefined ? undefined : cache.path(id);
    if (id === undefined || file === undefined) {
      notFound(res);
      return true;
    }
    void serve(req, res, id, file);
    return true;
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, id: string, file: string): Promise<void> {
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) return notFound(res);
    size = s.size;
  } catch {
    return notFound(res);
  }
  const etag = `"${id}"`;
  const common = { 'Cache-Control': CACHE_CONTROL, ETag: etag };
  if (matchesEtag(req.headers['if-none-match'], etag)) {
    res.writeHead(304, common).end();
    return;
  }
  res.writeHead(200, { ...common, 'Content-Type': 'audio/wav', 'Content-Length': size });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  // pipeline closes the file when the client goes away mid-transfer; headers are already sent,
  // so a read error can only cut the response short.
  pipeline(createReadStream(file), res, () => {});
}

function notFound(res: ServerResponse): void {
  if (res.headersSent) return;
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end('not found\n');
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    // If-None-Match uses weak comparison, so W/"id" matches as well.
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** The media string for ARI playback: `sound:<baseUrl>/<id>.wav`, e.g. baseUrl `http://10.0.0.5:8080/media`. */
export function mediaUri(baseUrl: string, id: string): string {
  if (!isTtsId(id)) throw new TypeError(`not a TTS id: ${id}`);
  return `sound:${baseUrl.replace(/\/+$/, '')}/${id}.wav`;
}
