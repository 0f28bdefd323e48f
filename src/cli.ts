#!/usr/bin/env node
// The `call-actions` command (package.json bin); what it does is in app/cli.ts.
import { main } from './app/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`call-actions: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
