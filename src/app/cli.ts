import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { jsonSchema, rootSchema, type Config } from './config-schema.js';
import type { CountryCode } from 'libphonenumber-js';
import { HOOKS_USAGE, hooksCommand } from '../hooks/cli.js';
import { ROUTES_USAGE, routesCommand } from '../routing/cli.js';
import { runLogCommand, type CliContext } from '../history/command.js';
import { historyFilter, startService } from './service.js';
import { querySmsHistory, type HistoryEntry, type HistoryFilter } from '../sms/history.js';
import { smsMigrations } from '../sms/outbox.js';

const USAGE = `call-actions — call actions for Asterisk (ARI + AMI)

usage:
  call-actions start [--config FILE] [--exit-on-auth-error]
                                            run the service (default config: $CALL_ACTIONS_CONFIG or call-actions.yaml);
                                            --exit-on-auth-error: exit 2 when Asterisk refuses the ARI credentials
                                            instead of retrying (same as asterisk.ari.exitOnAuthError: true)
  call-actions validate FILE                check a config file without starting anything
  call-actions schema                       print the config's JSON Schema (for editors)
  call-actions demo [--config FILE] [--caller E164]
                                            a queued SIP caller presses # on the local test PBX and is texted
  call-actions sms history [--config FILE] [--call-id ID] [--description TEXT] [--number PHONE]
                           [--status STATUS]... [--since ISO] [--until ISO] [--limit N] [--offset N] [--json]
                            STATUS: pending, sending, sent, failed, skipped, blocked
${HOOKS_USAGE}${ROUTES_USAGE}`;

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or config error (nothing was started). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'validate':
      return validate(rest);
    case 'schema':
      process.stdout.write(JSON.stringify(jsonSchema(), null, 2) + '\n');
      return 0;
    case 'demo': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, caller: { type: 'string' } } });
      const { runDemo } = await import('../demo/demo.js');
      return runDemo(values);
    }
    case 'sms':
      if (rest[0] === 'history') return smsHistory(rest.slice(1));
      break;
    case 'hooks':
      return hooksCommand(rest, ctx);
    case 'routes':
      return routesCommand(rest, ctx);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
  }
  process.stderr.write(`unknown command: ${argv.join(' ')}\n\n${USAGE}`);
  return 2;
}

const ctx: CliContext = { load, configPath, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

function configPath(values: { config?: string }): string {
  return values.config ?? process.env.CALL_ACTIONS_CONFIG ?? 'call-actions.yaml';
}

function load(file: string): { config: Config; secrets: string[]; place(path: readonly PropertyKey[]): string } | undefined {
  try {
    const { value, secrets, place } = loadConfigFile(file, rootSchema);
    return { config: value, secrets, place };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return undefined;
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'exit-on-auth-error': { type: 'boolean' } } });
  const loaded = load(configPath(values));
  if (!loaded) return 2;
  if (values['exit-on-auth-error']) loaded.config.asterisk.ari.exitOnAuthError = true;
  let fatal: string | undefined;
  let stop: (signal: string) => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    stop = (signal) => {
      if (stopping) return;
      stopping = true;
      service.log.info({ signal }, 'stopping');
      void service.stop().then(resolve);
    };
  });
  const service = await startService(loaded.config, {
    secrets: loaded.secrets,
    place: loaded.place,
    onFatal(message) {
      fatal = message;
      stop('ARI credentials refused');
    },
  });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await stopped;
  if (fatal) {
    process.stderr.write(`${fatal}\n`);
    return 2;
  }
  return 0;
}

function validate(args: string[]): number {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
  const file = positionals[0] ?? configPath(values);
  const loaded = load(file);
  if (!loaded) return 2;
  const stages = Object.keys(loaded.config.stages);
  process.stdout.write(`${file}: ok (${stages.length} stage${stages.length === 1 ? '' : 's'}: ${stages.join(', ') || 'none'})\n`);
  return 0;
}

function smsHistory(args: string[]): number {
  return runLogCommand<HistoryFilter, HistoryEntry>(args, ctx, {
    name: 'call-actions sms history',
    flags: { description: 'one', number: 'one', recipient: 'one', status: 'many' },
    filter: (q, config) => historyFilter(q, config.sms.defaultCountry as CountryCode | undefined),
    migrations: smsMigrations,
    query: querySmsHistory,
    format: (m) => {
      const answer = m.lastAnswer ? `${m.lastAnswer.httpStatus ?? m.lastAnswer.error ?? ''} ${m.lastAnswer.body ?? ''}`.trim() : '';
      return (
        [
          new Date(m.time).toISOString(),
          m.callId,
          m.description,
          m.provider,
          m.recipient ?? '-',
          m.status,
          `attempts=${m.attempts}`,
          m.reason ?? '',
          m.note ?? '',
          answer.replace(/\s+/g, ' ').slice(0, 120),
        ].join('\t') + '\n'
      );
    },
    footer: (page, filter) => {
      const from = page.entries.length ? (filter.offset ?? 0) + 1 : 0;
      return `${from}-${(filter.offset ?? 0) + page.entries.length} of ${page.total}`;
    },
  });
}
