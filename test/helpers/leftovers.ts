/**
 * Processes a test started and did not end. A caller left ringing keeps SIPp's port, and a service
 * left running keeps a second connection to the Stasis app: either fails the tests after it for a
 * reason that has nothing to do with them. test/setup.ts ends them after each test (callers,
 * agents) or each file (services, which some files share between tests).
 */
const afterTest = new Set<() => void>();
const afterFile = new Set<() => void>();

/** `end` runs after the current test unless the returned function is called first. */
export function endAfterTest(end: () => void): () => void {
  afterTest.add(end);
  return () => void afterTest.delete(end);
}

/** `end` runs after the current file unless the returned function is called first. */
export function endAfterFile(end: () => void): () => void {
  afterFile.add(end);
  return () => void afterFile.delete(end);
}

function endAll(set: Set<() => void>): number {
  const n = set.size;
  for (const end of [...set]) {
    set.delete(end);
    try {
      end();
    } catch {
      /* already gone */
    }
  }
  return n;
}

export const endTestLeftovers = (): number => endAll(afterTest);
export const endFileLeftovers = (): number => endAll(afterFile);
