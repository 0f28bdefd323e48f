import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * undici's Agent and Pool without the rest of undici. The service only dispatches requests
 * (src/http/exchange.ts) and closes them; `import 'undici'` also loads fetch, WebSocket,
 * EventSource, the cache and the mock agents, which the service never calls: 3 MB of heap and
 * about 8 MB of RSS in a fresh service, measured (Node 20, undici 7: importing these two files
 * instead of the index, heap +1.75 MB instead of +4.7, RSS +11.7 MB instead of +20).
 * undici has no `exports` map, so these paths are its files as published; test/unit/http-undici
 * checks that they are still the classes `undici` exports, so a release that moves them fails there.
 */
const require = createRequire(import.meta.url);

export const Agent: typeof Undici.Agent = require('undici/lib/dispatcher/agent.js');
export type Agent = Undici.Agent;
export const Pool: typeof Undici.Pool = require('undici/lib/dispatcher/pool.js');
export type Pool = Undici.Pool;
