import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// bench/ is plain JavaScript without types: a computed specifier keeps tsc from asking for them
const readmeUrl = new URL('../../bench/lib/readme.js', import.meta.url).href;
const { readmeBlock, replaceBlock, blockSource, BEGIN, END } = (await import(readmeUrl)) as {
  readmeBlock: (result: unknown, file: string) => string;
  replaceBlock: (readme: string, block: string) => string;
  blockSource: (readme: string) => string | undefined;
  BEGIN: string;
  END: string;
};

const root = new URL('../../', import.meta.url);
const README = readFileSync(new URL('README.md', root), 'utf8');

describe("README's latest bench run (bench/lib/readme.js)", () => {
  it('quotes one run and nothing else: the block is exactly what that run\'s JSON gives', () => {
    const source = blockSource(README);
    expect(source, 'the Performance section names the run it quotes').toMatch(/^bench\/results\/.+\.json$/);
    expect(existsSync(new URL(source!, root)), `${source} is committed`).toBe(true);
    const result = JSON.parse(readFileSync(new URL(source!, root), 'utf8'));
    const inReadme = README.slice(README.indexOf(BEGIN), README.indexOf(END) + END.length);
    expect(inReadme).toBe(readmeBlock(result, source!));
  });

  it('shows every issue 14 target with its verdict, and a figure changed in the JSON changes the block', () => {
    const source = blockSource(README)!;
    const result = JSON.parse(readFileSync(new URL(source, root), 'utf8'));
    const block = readmeBlock(result, source);
    for (const t of ['service CPU per routed call ≤ 0.4 ms at 200 calls/s', 'route knee ≥ peer-curl knee, pinned (the pinned ladder)', 'fresh service RSS ≤ 90 MB', 'routing p99 over the whole memory run ≤ 5 ms']) {
      expect(block).toContain(`| ${t} |`);
    }
    const rung = result.scenarios.route.rungs[0];
    rung.cpuSecondsPer1000Calls.service = 0.123;
    expect(readmeBlock(result, source)).toContain(`0.123 at ${rung.offered}/s`);
  });

  it('refuses a README without the block instead of appending one', () => {
    expect(() => replaceBlock('# no block here\n', `${BEGIN}\nx\n${END}`)).toThrow(/no block/);
    expect(replaceBlock(`a\n${BEGIN}\nold\n${END}\nb`, `${BEGIN}\nnew\n${END}`)).toBe(`a\n${BEGIN}\nnew\n${END}\nb`);
  });
});
