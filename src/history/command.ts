import { parseArgs, type ParseArgsConfig } from 'node:util';
import { openAnyStore, type StoreSetting } from '../store/open.js';
import type { Migration, Store } from '../store/port.js';

/**
 * What a subcommand needs from the entry point, so it can be run without a process around it.
 * `C` is the config as the command reads it (the entry point loads the whole file).
 */
export interface CliContext<C = { store: StoreSetting }> {
  load(file: string): { config: C; secrets: string[] } | undefined;
  configPath(values: { config?: string }): string;
  out(text: string): void;
  err(text: string): void;
}

export interface LogCommand<F, E, C extends { store: StoreSetting }> {
  /** How its errors begin, e.g. `call-actions hooks log`. */
  name: string;
  /** Filter flags besides --call-id, --since and --until, each setting the query parameter of its own name. */
  flags: Record<string, 'one' | 'many'>;
  /** The HTTP endpoint's parser; a RangeError that starts with the parameter's name for a bad value. */
  filter(q: URLSearchParams, config: C): F;
  migrations: readonly Migration[];
  query(store: Store, filter: F): Promise<{ total: number; entries: E[] }>;
  /** One entry of the table, ending in a newline. */
  format(entry: E): string;
  /** The table's last line; "N of TOTAL" by default. */
  footer?(page: { total: number; entries: E[] }, filter: F): string;
}

/**
 * A log or history read from the command line. The flags become the endpoint's query and go
 * through the endpoint's parser, so the CLI and HTTP accept and refuse the same filters.
 */
export async function runLogCommand<F, E, C extends { store: StoreSetting }>(args: string[], ctx: CliContext<C>, cmd: LogCommand<F, E, C>): Promise<number> {
  const params: Record<string, string> = { 'call-id': 'callId', since: 'since', until: 'until', limit: 'limit', offset: 'offset' };
  const options: NonNullable<ParseArgsConfig['options']> = { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } };
  for (const flag of Object.keys(params)) options[flag] = { type: 'string' };
  for (const [flag, n] of Object.entries(cmd.flags)) {
    options[flag] = { type: 'string', multiple: n === 'many' };
    params[flag] = flag;
  }
  const { values } = parseArgs({ args, options });
  const loaded = ctx.load(ctx.configPath(values as { config?: string }));
  if (!loaded) return 2;
  const q = new URLSearchParams();
  for (const [flag, param] of Object.entries(params)) for (const v of [values[flag] ?? []].flat()) q.append(param, String(v));
  let filter: F;
  try {
    filter = cmd.filter(q, loaded.config);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    ctx.err(`${cmd.name}: ${e.message.replace(/^(\w+):/, '--$1:')}\n`);
    return 2;
  }
  const store = await openAnyStore(loaded.config.store, { migrations: cmd.migrations });
  try {
    const page = await cmd.query(store, filter);
    if (values.json) {
      ctx.out(JSON.stringify(page, null, 2) + '\n');
      return 0;
    }
    for (const e of page.entries) ctx.out(cmd.format(e));
    ctx.out(`${cmd.footer ? cmd.footer(page, filter) : `${page.entries.length} of ${page.total}`}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
