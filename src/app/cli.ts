import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { CliContext } from '../history/command.js';
import { jsonSchema, rootSchema, type Config } from './config-schema.js';
import { COMMANDS } from './features.js';
import { startService, type Service } from './service.js';
import { StoreUnusable } from '../store/open.js';
import { boundYoungGeneration } from './v8-flags.js';

const USAGE = `call-actions — call actions for Asterisk (ARI + AMI)

usage:
  call-actions start [--config FILE] [--exit-on-auth-error]
                                            run the service (default config: $CALL_ACTIONS_CONFIG or call-actions.yaml);
                                            --exit-on-auth-error: exit 2 when Asterisk refuses the ARI credentials
                                            instead of retrying (same as asterisk.ari.exitOnAuthError: true)
  call-actions reload [--config FILE] [--url URL]
                                            the running service reads its config file again (also on SIGHUP): a valid
                                            one applies to new calls, an invalid one is refused (exit 2) and the old
                                            one keeps serving; URL defaults to the file's http: host and port
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
    case 'reload':
      return reload(rest);
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
  const file = configPath(values);
  // a signal while the service still waits for its database ends the wait: nothing runs yet to drain
  const starting = new AbortController();
  const early = () => starting.abort();
  process.on('SIGTERM', early);
  process.on('SIGINT', early);
  let service: Service;
  try {
    service = await startService(loaded.config, {
      secrets: loaded.secrets,
      place: loaded.place,
      signal: starting.signal,
      reload() {
        const { value } = loadConfigFile(file, rootSchema);
        if (values['exit-on-auth-error']) value.asterisk.ari.exitOnAuthError = true;
        return { config: value };
      },
      onFatal(message) {
        fatal = message;
        stop('ARI credentials refused');
      },
    });
  } catch (e) {
    if (starting.signal.aborted) return 0;
    if (e instanceof StoreUnusable) {
      process.stderr.write(`call-actions: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGTERM', early);
    process.off('SIGINT', early);
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  boundYoungGeneration();
  // the signal came after the store opened, while the rest started: stop as usual now
  if (starting.signal.aborted) stop('SIGTERM');
  const hup = () => void service.reload();
  process.on('SIGHUP', hup);
  await stopped;
  process.off('SIGHUP', hup);
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

/** Asks the running service to read its config again; exit 0 applied, 2 refused (the file's errors on stderr), 1 not reachable. */
async function reload(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, url: { type: 'string' } } });
  const base = (values.url ?? serviceUrl(configPath(values))).replace(/\/+$/, '');
  let res: Response;
  try {
    // an admin action: the token (when http.tokens has any) comes from the environment, never the command line
    const token = process.env.CALL_ACTIONS_ADMIN_TOKEN;
    res = await fetch(`${base}/admin/reload`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    process.stderr.write(`cannot reach the service at ${base}: ${(e as Error).message}\n`);
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as { ok?: boolean; error?: string; stages?: string[]; restartNeeded?: string[] };
  if (res.status === 422 && body.ok === false) {
    process.stderr.write(`reload refused, the running config stays:\n${body.error ?? ''}\n`);
    return 2;
  }
  if (!res.ok || !body.ok) {
    process.stderr.write(`reload failed: ${res.status} ${JSON.stringify(body)}\n`);
    return 1;
  }
  process.stdout.write(`reloaded (${body.stages?.length ?? 0} stages: ${body.stages?.join(', ') || 'none'})\n`);
  if (body.restartNeeded?.length) process.stdout.write(`changed, applied at the next restart: ${body.restartNeeded.join(', ')}\n`);
  return 0;
}

/**
 * The admin listener's address from the file's http: section (http.admin, else the one listener:
 * http.media or the older http.host/port), read without validating the rest: the file may be the
 * broken one being reloaded.
 */
function serviceUrl(file: string): string {
  type Listen = { host?: unknown; port?: unknown; tls?: unknown };
  let http: Listen & { admin?: Listen; media?: Listen } = {};
  try {
    // a document with errors still gives what it could read
    const doc = parseDocument(readFileSync(file, 'utf8')).toJS() as { http?: typeof http } | null;
    http = doc?.http ?? {};
  } catch {
    /* defaults */
  }
  const listen: Listen = http.admin ?? http.media ?? http;
  const host = typeof listen.host === 'string' && listen.host !== '0.0.0.0' && listen.host !== '::' ? listen.host : '127.0.0.1';
  const port = typeof listen.port === 'number' ? listen.port : http.admin ? 8091 : 8090;
  return `${listen.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
