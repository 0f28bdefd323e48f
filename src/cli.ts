#!/usr/bin/env node
// The `call-actions` command (package.json bin); what it does is in app/cli.ts. `demo` is started
// from here: the demo sits above the service it runs (demo/ imports app/, never the reverse).
import { parseArgs } from 'node:util';
import { main } from './app/cli.js';

async function run(argv: string[]): Promise<number> {
  if (argv[0] !== 'demo') return main(argv);
  const { values } = parseArgs({ args: argv.slice(1), options: { config: { type: 'string', short: 'c' }, caller: { type: 'string' } } });
  const { runDemo } = await import('./demo/demo.js');
  return runDemo(values);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`call-actions: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
