/**
 * What `GET /stats` reports (the bench reads it): how long calls spend in the service, as cumulative histograms.
 * Cumulative (never reset) so that any number of readers can each subtract two snapshots to get
 * their own interval, the way Prometheus counters work; a reset endpoint would let one reader
 * spoil another's figures.
 */

/** Buckets grow by 2^(1/8) (about 9 %), from 10 µs to beyond a minute: about 180 buckets at most. */
const STEPS_PER_DOUBLING = 8;
const MIN_MS = 0.01;

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.ceil(Math.log2(ms / MIN_MS) * STEPS_PER_DOUBLING);
}

/** The upper bound (ms) of a bucket index. */
export function bucketUpperMs(i: number): number {
  return MIN_MS * 2 ** (i / STEPS_PER_DOUBLING);
}

export interface HistogramSnapshot {
  count: number;
  sumMs: number;
  /** [upper bound in ms, observations in that bucket] for the non-empty buckets, ascending */
  buckets: Array<[number, number]>;
}

export class Histogram {
  private readonly counts = new Map<number, number>();
  private count = 0;
  private sumMs = 0;

  observe(ms: number): void {
    const i = bucketOf(ms);
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1);
    this.count += 1;
    this.sumMs += ms;
  }

  snapshot(): HistogramSnapshot {
    const buckets = [...this.counts.entries()].sort((a, b) => a[0] - b[0]).map(([i, n]): [number, number] => [round(bucketUpperMs(i)), n]);
    return { count: this.count, sumMs: round(this.sumMs), buckets };
  }
}

/** `later − earlier` of the same histogram: the observations made in between. */
export function histogramDelta(later: HistogramSnapshot, earlier?: HistogramSnapshot): HistogramSnapshot {
  if (!earlier) return later;
  const before = new Map(earlier.buckets);
  const buckets = later.buckets.map(([ub, n]): [number, number] => [ub, n - (before.get(ub) ?? 0)]).filter(([, n]) => n > 0);
  return { count: later.count - earlier.count, sumMs: round(later.sumMs - earlier.sumMs), buckets };
}

/** The q-quantile (0..1) as its bucket's upper bound: an overestimate by less than one bucket (9 %). */
export function quantileMs(h: HistogramSnapshot, q: number): number | undefined {
  if (h.count <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (const [ub, n] of h.buckets) {
    seen += n;
    if (seen >= rank) return ub;
  }
  return h.buckets[h.buckets.length - 1]?.[0];
}

/** How a visit to a stage ended. */
export type StageOutcome = 'left' | 'fallback' | 'gone';

export interface StageMetrics {
  entered: number;
  left: number;
  fallback: number;
  gone: number;
  /**
   * Asterisk's StasisStart timestamp → the REST call that took the channel out of Stasis
   * (continue or hangup) returned. Includes the event's trip to the service; Asterisk stamps
   * events in whole milliseconds, so single values are ±1 ms.
   */
  sinceStasisStart: HistogramSnapshot;
  /** The same end, from the moment the service received the StasisStart (sub-millisecond). */
  inService: HistogramSnapshot;
  /**
   * inService split by who was waited on, per visit: the routing API, Asterisk (the channel's
   * REST requests), and the rest, which is the service's own (its code, its event loop's queue,
   * GC). The caller's own time (prompts, menus) is in none of them. A wait is timed from sending
   * the request to having read its answer, so it holds the service's own sending and reading
   * too, and waits that overlapped (a caller name set while a prompt plays) are each counted
   * whole: `own` can only be understated, never inflated by a slow API or PBX.
   */
  api: HistogramSnapshot;
  asterisk: HistogramSnapshot;
  own: HistogramSnapshot;
}

/** When a visit left by the service's hand: its times, and what it waited on (CallSession.waited, ChannelHandle.restMs). */
export interface VisitTimes {
  sinceStasisStartMs: number;
  inServiceMs: number;
  apiMs: number;
  asteriskMs: number;
  mediaMs: number;
}

const histograms = () => ({ since: new Histogram(), inService: new Histogram(), api: new Histogram(), asterisk: new Histogram(), own: new Histogram() });

/**
 * Per stage: visits, how they ended, and how long the service kept the channel before it left.
 * Only configured stage names get their own entry (a dialplan may name anything).
 */
export class CallMetrics {
  private readonly stages = new Map<string, { entered: number; left: number; fallback: number; gone: number } & ReturnType<typeof histograms>>();

  /** Visits in progress: entered and not ended yet. */
  private active = 0;
  /** The service's event-loop delay, sampled while calls are in a stage. */
  readonly loopDelay = new LoopDelay(() => this.active > 0);

  constructor(private readonly known: ReadonlySet<string>) {}

  private of(stage: string) {
    const name = this.known.has(stage) ? stage : '(unknown)';
    let s = this.stages.get(name);
    if (!s) this.stages.set(name, (s = { entered: 0, left: 0, fallback: 0, gone: 0, ...histograms() }));
    return s;
  }

  entered(stage: string): void {
    this.of(stage).entered += 1;
    this.active += 1;
    this.loopDelay.wake();
  }

  /** `times`: undefined when the channel never left by our hand (the caller hung up first). */
  ended(stage: string, outcome: StageOutcome, times?: VisitTimes): void {
    const s = this.of(stage);
    s[outcome] += 1;
    this.active = Math.max(0, this.active - 1);
    if (times && outcome !== 'gone') {
      s.since.observe(Math.max(0, times.sinceStasisStartMs));
      s.inService.observe(times.inServiceMs);
      s.api.observe(times.apiMs);
      s.asterisk.observe(times.asteriskMs);
      s.own.observe(Math.max(0, times.inServiceMs - times.apiMs - times.asteriskMs - times.mediaMs));
    }
  }

  snapshot(): Record<string, StageMetrics> {
    const out: Record<string, StageMetrics> = {};
    for (const [name, s] of this.stages) {
      out[name] = {
        entered: s.entered,
        left: s.left,
        fallback: s.fallback,
        gone: s.gone,
        sinceStasisStart: s.since.snapshot(),
        inService: s.inService.snapshot(),
        api: s.api.snapshot(),
        asterisk: s.asterisk.snapshot(),
        own: s.own.snapshot(),
      };
    }
    return out;
  }
}

/**
 * How late the event loop runs a timer: a callback every `intervalMs` notes how far past its due
 * time it ran. Any synchronous stretch (a GC pause, an fsync, a long parse) that delays calls
 * shows up here, and a cumulative histogram lets each reader take its own interval.
 * perf_hooks.monitorEventLoopDelay measures the same but keeps one histogram that only a reset
 * can turn into an interval. It samples only while `busy()` (calls are in a stage): stalls
 * matter when they delay a caller, and an idle service should not wake 50 times a second.
 */
export class LoopDelay {
  private readonly histogram = new Histogram();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly busy: () => boolean,
    private readonly intervalMs = 20,
  ) {}

  /** Starts sampling if it is not already; it stops by itself once `busy()` is false. */
  wake(): void {
    if (this.timer) return;
    let due = performance.now() + this.intervalMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.histogram.observe(Math.max(0, now - due));
      due = now + this.intervalMs;
      if (!this.busy()) this.stop();
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  snapshot(): HistogramSnapshot {
    return this.histogram.snapshot();
  }
}

export interface ProcessMetrics {
  rssBytes: number;
  /** V8's heap: what it has reserved, and what of it live and not yet collected objects use */
  heapTotalBytes: number;
  heapUsedBytes: number;
  /** memory of C++ objects bound to JS objects (Buffers, sockets' buffers, SQLite statements…) */
  externalBytes: number;
  arrayBuffersBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  uptimeS: number;
  eventLoopDelay?: HistogramSnapshot;
}

/** Resource figures of this process, for the same endpoint. */
export function processMetrics(loop?: LoopDelay): ProcessMetrics {
  const m = process.memoryUsage();
  const c = process.cpuUsage();
  return {
    rssBytes: m.rss,
    heapTotalBytes: m.heapTotal,
    heapUsedBytes: m.heapUsed,
    externalBytes: m.external,
    arrayBuffersBytes: m.arrayBuffers,
    cpuUserMs: Math.round(c.user / 1000),
    cpuSystemMs: Math.round(c.system / 1000),
    uptimeS: Math.round(process.uptime()),
    ...(loop ? { eventLoopDelay: loop.snapshot() } : {}),
  };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
