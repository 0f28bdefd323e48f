import { parseArgs } from 'node:util';
import type { CountryCode } from 'libphonenumber-js';
import { runLogCommand, type CliContext } from '../history/command.js';
import { dryRun, formatDryRun } from './dry-run.js';
import { hookLogFilter, queryHookLog, type HookLogEntry } from './history.js';
import { hookMigrations } from './store.js';
import type { Hook } from './config.js';

/** Config as the hooks commands read it (sms.defaultCountry: how the dry run's numbers are read). */
export type HooksCliConfig = { store: string; hooks: Hook[]; sms: { defaultCountry?: string } };

/** `call-actions hooks …`: the execution log and the dry run, from the command line. */

export const HOOKS_USAGE = `  call-actions hooks log [--config FILE] [--call-id ID] [--hook NAME] [--event KIND] [--status STATUS]...
                         [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            STATUS: pending, sending, ok, failed, skipped
  call-actions hooks test HOOK --caller NUMBER --called DID [--config FILE] [--var NAME=VALUE]... [--send] [--show-secrets]
                                            render the request for a made-up call; send it once only with --send
`;

export async function hooksCommand(args: string[], ctx: CliContext<HooksCliConfig>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'log') return hooksLog(rest, ctx);
  if (sub === 'test') return hooksTest(rest, ctx);
  ctx.err(`unknown command: hooks ${sub ?? ''}\n\nusage:\n${HOOKS_USAGE}`);
  return 2;
}

function hooksLog(args: string[], ctx: CliContext<HooksCliConfig>): Promise<number> {
  return runLogCommand(args, ctx, {
    name: 'call-actions hooks log',
    flags: { hook: 'one', event: 'one', status: 'many' },
    filter: hookLogFilter,
    migrations: hookMigrations,
    query: queryHookLog,
    format: formatEntry,
  });
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

async function hooksTest(args: string[], ctx: CliContext<HooksCliConfig>): Promise<number> {
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
