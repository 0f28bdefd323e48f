import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from './auth.js';
import type { LiveCalls } from './live.js';
import { maskNumber } from '../log.js';

/**
 * `GET /live`: Server-Sent Events, one `calls` event with the whole list each time it changes
 * (and every 15 s, which also keeps proxies from closing the stream). A viewer's list has the
 * callers' numbers masked.
 */
export function liveStream(live: LiveCalls) {
  return (req: IncomingMessage, res: ServerResponse, caller: Caller): void => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    const send = () => {
      const calls = live.list().map((c) => (caller.role === 'admin' ? c : { ...c, caller: maskNumber(c.caller, 'info') ?? '' }));
      res.write(`event: calls\ndata: ${JSON.stringify({ now: Date.now(), calls })}\n\n`);
    };
    send();
    live.on('change', send);
    const beat = setInterval(send, 15_000);
    const end = () => {
      clearInterval(beat);
      live.off('change', send);
    };
    req.on('close', end);
    res.on('close', end);
  };
}
