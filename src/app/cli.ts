import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { CliContext } from '../history/command.js';
import { jsonSchema, rootSchema, type Config } from './config-schema.js';
import { COMMANDS } from './features.js';
import { startService } from './service.js';

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
${COMMANDS.map((c) => c.usage).join('')}`;

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
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
  }
  const featureCommand = COMMANDS.find((c) => c.name === command);
  if (featureCommand) return featureCommand.run(rest, ctx as never);
  process.stderr.write(`unknown command: ${argv.join(' ')}\n\n${USAGE}`);
  return 2;
}

const ctx: CliContext<Config> = { load, configPath, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

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
  // a second signal while draining: hand the calls still there back now
  const cut = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    stop = (signal) => {
      if (stopping) {
        service.log.info({ signal }, 'second signal: ending the drain now');
        cut.abort();
        return;
      }
      stopping = true;
      service.log.info({ signal, drainMs: loaded.config.shutdown.drain }, 'stopping: draining the calls in progress');
      void service.stop({ cut: cut.signal }).then(resolve);
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
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
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
