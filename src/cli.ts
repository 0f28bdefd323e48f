#!/usr/bin/env node
// The `call-actions` command (package.json bin); what it does is in app/cli.ts. `demo` is started
// from here: the demo sits above the service it runs (demo/ imports app/, never the reverse).
import './app/v8-flags.js';
import { parseArgs } from 'node:util';

async function run(argv: string[]): Promise<number> {
  // imported only now: loading the service's modules is what grows V8's new space, so the
  // setting above has to be in place before their graph is even parsed
  if (argv[0] !== 'demo') return (await import('./app/cli.js')).main(argv);
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
