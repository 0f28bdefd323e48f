import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { openStore } from '../store/sqlite.js';
import { queryRouteLog, routeLogFilter, routeMigrations, type RouteLogEntry } from './history.js';

/** `call-actions routes log`: the routing log from the command line, the same query as GET /routes/log. */

export const ROUTES_USAGE = `  call-actions routes log [--config FILE] [--call-id ID] [--caller NUMBER] [--outcome OUTCOME]... [--step PATH]
                          [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            OUTCOME: routed, status-error, timeout, connect, transport, http-error, malformed,
                                     unknown-result, unknown-destination, outside-schedule, loop-guard
`;

export interface CliContext {
  load(file: string): { config: Config; secrets: string[] } | undefined;
  configPath(values: { config?: string }): string;
  out(text: string): void;
  err(text: string): void;
}

export function routesCommand(args: string[], ctx: CliContext): number {
  const [sub, ...rest] = args;
  if (sub !== 'log') {
    ctx.err(`unknown command: routes ${sub ?? ''}\n\nusage:\n${ROUTES_USAGE}`);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      'call-id': { type: 'string' },
      caller: { type: 'string' },
      outcome: { type: 'string', multiple: true },
      step: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      offset: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const loaded = ctx.load(ctx.configPath(values));
  if (!loaded) return 2;
  const q = new URLSearchParams();
  const put = (k: string, v: string | undefined) => v !== undefined && q.append(k, v);
  put('callId', values['call-id']);
  put('caller', values.caller);
  for (const o of values.outcome ?? []) q.append('outcome', o);
  put('step', values.step);
  put('since', values.since);
  put('until', values.until);
  put('limit', values.limit);
  put('offset', values.offset);
  let filter;
  try {
    filter = routeLogFilter(q);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    ctx.err(`call-actions routes log: ${e.message.replace(/^(\w+):/, '--$1:')}\n`);
    return 2;
  }
  const store = openStore(loaded.config.store, { migrations: routeMigrations });
  try {
    const page = queryRouteLog(store, filter);
    if (values.json) {
      ctx.out(JSON.stringify(page, null, 2) + '\n');
      return 0;
    }
    for (const e of page.entries) ctx.out(formatEntry(e));
    ctx.out(`${page.entries.length} of ${page.total}\n`);
    return 0;
  } finally {
    store.close();
  }
}

function formatEntry(e: RouteLogEntry): string {
  const answer = e.httpStatus !== null ? `HTTP ${e.httpStatus} ${(e.responseBody ?? '').replace(/\s+/g, ' ').slice(0, 100)}` : (e.responseBody ?? '');
  return (
    [new Date(e.time).toISOString(), e.callId, e.step, e.outcome, e.decision, `${e.latencyMs ?? '-'} ms`, e.filler ? 'filler' : ''].join('\t') +
    `\n  ${e.method ?? ''} ${e.url ?? ''} (${e.encoding ?? '-'}) → ${answer}${e.reason ? `\n  reason: ${e.reason}` : ''}\n`
  );
}
