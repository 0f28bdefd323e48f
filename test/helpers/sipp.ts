import { runSipp as run, type SippOptions, type SippResult } from '../../src/demo/local-pbx.js';
import { endAfterTest } from './leftovers.js';

export type { SippOptions, SippResult };

/** Places one call with SIPp; a call still going when its test ends is cut there. */
export function runSipp(opts: SippOptions): Promise<SippResult> {
  const cut = new AbortController();
  const forget = endAfterTest(() => cut.abort());
  return run({ ...opts, signal: cut.signal }).finally(forget);
}
