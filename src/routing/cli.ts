import { runLogCommand, type CliContext } from '../history/command.js';
import { queryRouteLog, routeLogFilter, routeMigrations, type RouteLogEntry } from './history.js';

/** `call-actions routes log`: the routing log from the command line, the same query as GET /routes/log. */

export const ROUTES_USAGE = `  call-actions routes log [--config FILE] [--call-id ID] [--caller NUMBER] [--outcome OUTCOME]... [--step PATH]
                          [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            OUTCOME: routed, status-error, timeout, connect, transport, http-error, malformed,
                                     unknown-result, unknown-destination, outside-schedule, loop-guard
`;

export async function routesCommand(args: string[], ctx: CliContext<{ store: string }>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'log') {
    ctx.err(`unknown command: routes ${sub ?? ''}\n\nusage:\n${ROUTES_USAGE}`);
    return 2;
  }
  return runLogCommand(rest, ctx, {
    name: 'call-actions routes log',
    flags: { caller: 'one', outcome: 'many', step: 'one' },
    filter: routeLogFilter,
    migrations: routeMigrations,
    query: queryRouteLog,
    format: formatEntry,
  });
}

function formatEntry(e: RouteLogEntry): string {
  const answer = e.httpStatus !== null ? `HTTP ${e.httpStatus} ${(e.responseBody ?? '').replace(/\s+/g, ' ').slice(0, 100)}` : (e.responseBody ?? '');
  return (
    [new Date(e.time).toISOString(), e.callId, e.step, e.outcome, e.decision, `${e.latencyMs ?? '-'} ms`, e.filler ? 'filler' : ''].join('\t') +
    `\n  ${e.method ?? ''} ${e.url ?? ''} (${e.encoding ?? '-'}) → ${answer}${e.reason ? `\n  reason: ${e.reason}` : ''}\n`
  );
}
