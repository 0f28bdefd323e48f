import { parseArgs } from 'node:util';
import type { CountryCode } from 'libphonenumber-js';
import type { Config } from '../config/schema.js';
import { openStore } from '../store/sqlite.js';
import { dryRun, formatDryRun } from './dry-run.js';
import { hookLogFilter, queryHookLog, type HookLogEntry } from './history.js';
import { hookMigrations } from './store.js';

/** `call-actions hooks …`: the execution log and the dry run, from the command line. */

export const HOOKS_USAGE = `  call-actions hooks log [--config FILE] [--call-id ID] [--hook NAME] [--event KIND] [--status STATUS]...
                         [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            STATUS: pending, sending, ok, failed, skipped
  call-actions hooks test HOOK --caller NUMBER --called DID [--config FILE] [--var NAME=VALUE]... [--send] [--show-secrets]
                                            render the request for a made-up call; send it once only with --send
`;

export interface CliContext {
  load(file: string): { config: Config; secrets: string[] } | undefined;
  configPath(values: { config?: string }): string;
  out(text: string): void;
  err(text: string): void;
}

export async function hooksCommand(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'log') return hooksLog(rest, ctx);
  if (sub === 'test') return hooksTest(rest, ctx);
  ctx.err(`unknown command: hooks ${sub ?? ''}\n\nusage:\n${HOOKS_USAGE}`);
  return 2;
}

function hooksLog(args: string[], ctx: CliContext): number {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'call-id': { type: 'string' },
      hook: { type: 'string' },
      event: { type: 'string' },
      status: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      offset: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const loaded = ctx.load(ctx.configPath(values));
  if (!loaded) return 2;
  // The same parser as GET /hooks/log, so both accept and refuse the same queries.
  const q = new URLSearchParams();
  const put = (k: string, v: string | undefined) => v !== undefined && q.append(k, v);
  put('callId', values['call-id']);
  put('hook', values.hook);
  put('event', values.event);
  for (const s of values.status ?? []) q.append('status', s);
  put('since', values.since);
  put('until', values.until);
  put('limit', values.limit);
  put('offset', values.offset);
  let filter;
  try {
    filter = hookLogFilter(q);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    ctx.err(`call-actions hooks log: ${e.message.replace(/^(\w+):/, '--$1:')}\n`);
    return 2;
  }
  const store = openStore(loaded.config.store, { migrations: hookMigrations });
  try {
    const page = queryHookLog(store, filter);
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

function formatEntry(e: HookLogEntry): string {
  const head = [new Date(e.time).toISOString(), e.callId, e.event, e.hook, e.status, `attempts=${e.attempts}`, e.reason ?? ''].join('\t');
  const extracted = e.extracted ? `\textracted: ${Object.entries(e.extracted).map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
  const attempts = e.attemptLog.map((a) => {
    const answer = a.response ? `HTTP ${a.response.status} ${(a.response.body ?? '').replace(/\s+/g, ' ').slice(0, 100)}` : (a.error ?? '');
    return `  #${a.attempt} ${new Date(a.startedAt).toISOString()} ${a.outcome} ${a.reason ?? ''} ${a.latencyMs ?? '-'} ms ${a.request?.method ?? ''} ${a.request?.url ?? ''} → ${answer}`;
  });
  return [head + extracted, ...attempts].join('\n') + '\n';
}

async function hooksTest(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      caller: { type: 'string' },
      called: { type: 'string' },
      var: { type: 'string', multiple: true },
      send: { type: 'boolean' },
      'show-secrets': { type: 'boolean' },
    },
  });
  const name = positionals[0];
  if (!name || !values.caller || !values.called) {
    ctx.err(`usage:\n${HOOKS_USAGE}`);
    return 2;
  }
  const loaded = ctx.load(ctx.configPath(values));
  if (!loaded) return 2;
  const hook = loaded.config.hooks.find((h) => h.name === name);
  if (!hook) {
    ctx.err(`call-actions hooks test: no hook named "${name}" (hooks: ${loaded.config.hooks.map((h) => h.name).join(', ') || 'none'})\n`);
    return 2;
  }
  const vars: Record<string, string> = {};
  for (const kv of values.var ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) {
      ctx.err(`call-actions hooks test: --var ${kv}: expected NAME=VALUE\n`);
      return 2;
    }
    vars[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const secrets = [...loaded.secrets, ...(hook.secret ? [hook.secret] : [])];
  const result = await dryRun({ hook, caller: values.caller, called: values.called, vars, secrets, send: values.send, showSecrets: values['show-secrets'], defaultCountry: loaded.config.sms.defaultCountry as CountryCode | undefined });
  ctx.out(formatDryRun(hook, result, values.send === true));
  if (values.send && result.report?.outcome !== 'ok') return 1;
  return 0;
}
