import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/**
 * The V8 settings the CLI applies to the service, for its memory. This module is the first the CLI
 * imports (src/cli.ts), before the service's module graph is even parsed.
 *
 * Bounds V8's new space (where objects are born: two semi-spaces) at 2 MB a semi-space instead of
 * Node's 16. The default space grows while start-up's modules survive their first collections, so
 * a fresh service kept about 16 MB resident for a space then holding a few MB, and a long run kept
 * all 32: the largest single part of its RSS and of its growth (bench memory run, 10,000 routed
 * calls at 100/s: fresh 99.9 → 137.8 MB with 16 MB, 108.8 MB with 2 MB). A smaller space is
 * collected more often (1,453 scavenges instead of 177, 1.2 s of pauses instead of 0.5 s), each
 * pause shorter (p99 2.3 ms instead of 10), and its survivors are fewer per collection; the loop's
 * delay p99 went from 5.1 to 2.3 ms and routing's p99 from 17 to 9 ms in those runs. 1 MB cost
 * about four times the scavenging of 2 MB, for 2 MB less.
 *
 * A V8 flag can only be read when the isolate starts, except the growth factor, which V8 reads
 * each time it would grow the space. So: no growth at all while the modules load (a fresh service
 * keeps V8's initial 1 MB), then, once the service runs, growth by a factor that lands exactly on the
 * bound, and none past it; V8 may shrink the space when the service idles, and it may grow back.
 * This applies to `npm start`, `node dist/cli.js start` and the container alike. A semi-space size
 * or growth factor given to node itself (command line or NODE_OPTIONS) is the operator's choice
 * and is left alone.
 */
const BOUND_BYTES = 2 * 2 * 2 ** 20;

const nodeArgs = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const given = nodeArgs.some((a) => /^--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)\b/.test(a));
let factor = 0;
setFactor(1);

/*
 * undici (ARI's REST, the routing API, hooks, SMS providers) parses HTTP with llhttp compiled to
 * WebAssembly. V8 first compiles it with Liftoff, then recompiles its hot parse function with
 * TurboFan on a background thread, and that one compilation left about 9 MB of the allocator's
 * memory resident in the service for good, a second or two after its first requests (a process
 * making one undici request: anonymous RSS +9.3 MB three seconds later in 2 of 4 tries, +0.3 to
 * +1.3 MB with --liftoff-only; 2,000 requests: +21 MB, +8.7 MB). The fresh service's RSS was 88
 * or 98 MB depending on whether that compilation had run yet. Liftoff's code parses a response a
 * few microseconds slower (20,000 requests of a routing answer: 55-62 µs of CPU each with
 * TurboFan, 64-66 with Liftoff, client and server together). Set before undici compiles llhttp,
 * on its first connection; a wasm flag given to node is left alone.
 */
if (!nodeArgs.some((a) => /^--(no-)?(liftoff|wasm)/.test(a))) v8.setFlagsFromString('--liftoff-only');

function setFactor(f: number): void {
  if (given || f === factor) return;
  v8.setFlagsFromString(`--semi-space-growth-factor=${f}`);
  factor = f;
}

function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? BOUND_BYTES;
}

let observer: PerformanceObserver | undefined;

/** From now on the new space may grow up to the bound (the service has started). */
export function boundYoungGeneration(): void {
  if (given || observer) return;
  const adjust = () => {
    const size = newSpaceBytes();
    setFactor(size < BOUND_BYTES ? Math.max(2, Math.floor(BOUND_BYTES / size)) : 1);
  };
  observer = new PerformanceObserver(adjust);
  observer.observe({ entryTypes: ['gc'] });
  adjust();
}
