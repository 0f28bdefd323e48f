// Types of sipp-calls.js, for the tests that import it.

export interface Caller {
  /** [field0]: the From user, i.e. CALLERID(num). */
  from: string;
  /** [field1]: the From display name, i.e. CALLERID(name). */
  name: string;
}

export interface PlaceCallsOptions {
  scenario: string;
  service: string;
  callers: readonly Caller[];
  /** Calls per second (may be fractional). */
  rate: number;
  /** sipp's working directory: injection file, call log, error log. */
  dir: string;
  /** Local SIP port; the control socket takes localPort + 2. */
  localPort: number;
  mediaPort: number;
  /** host:port of the SIP peer. */
  remote: string;
  /** sipp's own -timeout for the whole run. */
  timeoutS: number;
  /** At most this many calls at once (default: 60 s of calls, at least 500). */
  limit?: number;
  /** Start sipp this much later (default 0). */
  delayMs?: number;
}

export interface SippExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  startedAt: number;
  endedAt: number;
}

export interface CallOutcome {
  from: string;
  callId: string;
  /** Epoch ms of the call's "start" log line (just before its INVITE). */
  start: number;
  /** Epoch ms of its "end" line or of the error that ended it; its start when neither is known. */
  end: number;
  /** 0 ended as the scenario says, 1 an error in sipp's error log ended it, null neither. */
  code: 0 | 1 | null;
  /** Why it failed: sipp's error entries for it, or that there are none. */
  tail?: string;
}

export interface PlaceCallsResult {
  exit: SippExit;
  cpuSeconds: number;
  stderr: string;
  calls: CallOutcome[];
}

export function placeCalls(o: PlaceCallsOptions): { stop(): void; kill(): void; done: Promise<PlaceCallsResult> };

export function outcomes(logFile: string, errorFile: string, exit: SippExit): CallOutcome[];
