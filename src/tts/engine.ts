import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Every engine returns the same format, so the cache, the media endpoint and Asterisk never need
 * to know which engine spoke: 8 kHz is what a telephone channel carries, and 16-bit signed mono
 * PCM in a WAV container plays in Asterisk without transcoding surprises.
 */
export const TTS_SAMPLE_RATE = 8000;

export interface SynthesizeOptions {
  /** A language code such as `en`, `en-us`, `pl`, `tr`, `ja`; each engine maps it to its own voices. */
  language: string;
  /** An engine-specific voice; when absent the engine picks its default voice for the language. */
  voice?: string;
  signal?: AbortSignal;
}

export interface TtsEngine {
  readonly name: string;
  /** Resolves to 8 kHz mono 16-bit signed PCM WAV bytes with a correct header. */
  synthesize(text: string, opts: SynthesizeOptions): Promise<Buffer>;
}

export type TtsErrorKind = 'too-long' | 'timeout' | 'aborted' | 'engine-failed' | 'unsupported-language';

export class TtsError extends Error {
  override readonly name = 'TtsError';
  constructor(
    readonly kind: TtsErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Counts code points, not UTF-16 units, so a limit means the same for Japanese and emoji as for ASCII. */
export function exceedsLength(text: string, maxChars: number): boolean {
  if (text.length <= maxChars) return false;
  let n = 0;
  for (const _ of text) if (++n > maxChars) return true;
  return false;
}

export interface WavInfo {
  audioFormat: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Byte offset of the first sample. */
  dataOffset: number;
  /** Length of the sample data as it actually is in the buffer, not as the header claims. */
  dataBytes: number;
}

/**
 * Reads the fmt and data chunks. The data chunk is measured from the buffer, because WAV written
 * to a pipe carries a placeholder length (the writer cannot seek back to fill it in).
 */
export function parseWav(buf: Buffer): WavInfo {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new TtsError('engine-failed', 'engine output is not a RIFF/WAVE file');
  }
  let fmt: Omit<WavInfo, 'dataOffset' | 'dataBytes'> | undefined;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) break;
      fmt = {
        audioFormat: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) break;
      const blockAlign = Math.max(1, (fmt.channels * fmt.bitsPerSample) / 8);
      const available = buf.length - body;
      const dataBytes = available - (available % blockAlign);
      return { ...fmt, dataOffset: body, dataBytes };
    }
    // Chunks are padded to an even length.
    off = body + size + (size % 2);
  }
  throw new TtsError('engine-failed', 'engine output has no fmt or data chunk');
}

/**
 * Checks the format every engine promises and rewrites the RIFF and data lengths to match the
 * bytes actually present. Returns a buffer trimmed to whole samples.
 */
export function finalizeWav(buf: Buffer): Buffer {
  const info = parseWav(buf);
  if (info.audioFormat !== 1 || info.channels !== 1 || info.sampleRate !== TTS_SAMPLE_RATE || info.bitsPerSample !== 16) {
    throw new TtsError(
      'engine-failed',
      `engine output is ${info.sampleRate} Hz, ${info.channels} channel(s), ${info.bitsPerSample}-bit, format ${info.audioFormat}; expected 8000 Hz mono 16-bit PCM`,
    );
  }
  const out = buf.subarray(0, info.dataOffset + info.dataBytes);
  out.writeUInt32LE(out.length - 8, 4);
  out.writeUInt32LE(info.dataBytes, info.dataOffset - 4);
  return out;
}

export type SpawnFn = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export interface PipelineStage {
  command: string;
  args: readonly string[];
}

export interface RunPipelineOptions {
  /** Written to the first stage's stdin, which is then closed. */
  input: string | Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Lets tests observe the children; defaults to node's spawn. */
  spawn?: SpawnFn;
}

/** How much of a child's stderr is kept for the error message: enough to diagnose, bounded. */
const STDERR_KEEP = 2048;

interface StageState {
  child?: ChildProcess;
  stderr: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  startError?: Error;
  /** Killed by us, so its exit status says nothing about what went wrong. */
  killed?: boolean;
}

/**
 * Runs `stage1 | stage2 | …` without a shell, so nothing in the text or arguments is ever
 * interpreted, and returns the last stage's stdout. On timeout, abort or a failing stage every
 * child is killed, and the promise settles only after all of them have exited, so no process
 * outlives the call.
 */
export function runPipeline(stages: readonly PipelineStage[], opts: RunPipelineOptions): Promise<Buffer> {
  const spawn = opts.spawn ?? (nodeSpawn as SpawnFn);
  if (stages.length === 0) throw new TypeError('runPipeline needs at least one stage');
  return new Promise<Buffer>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new TtsError('aborted', 'synthesis aborted', { cause: opts.signal.reason }));
      return;
    }
    const states: StageState[] = stages.map(() => ({ stderr: '' }));
    const chunks: Buffer[] = [];
    let interrupted: TtsError | undefined;
    let killing = false;
    let open = 0;

    const killAll = (): void => {
      killing = true;
      for (const st of states) {
        const c = st.child;
        if (c && c.exitCode === null && c.signalCode === null) {
          st.killed = true;
          c.kill('SIGKILL');
        }
      }
    };
    const interrupt = (err: TtsError): void => {
      interrupted ??= err;
      killAll();
    };
    const onAbort = (): void => interrupt(new TtsError('aborted', 'synthesis aborted', { cause: opts.signal?.reason }));
    const timer = setTimeout(
      () => interrupt(new TtsError('timeout', `synthesis took longer than ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const settle = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (interrupted) return reject(interrupted);
      // The earliest failing stage is the cause; later ones usually just saw a truncated stream.
      for (const [i, st] of states.entries()) {
        const cmd = stages[i]?.command ?? '?';
        if (st.startError) {
          return reject(new TtsError('engine-failed', `cannot run ${cmd}: ${st.startError.message}`, { cause: st.startError }));
        }
        if (st.exit && st.exit.code !== 0 && !st.killed) {
          const why = st.stderr.trim() || (st.exit.signal ? `killed by ${st.exit.signal}` : `exit code ${st.exit.code}`);
          return reject(new TtsError('engine-failed', `${cmd} failed: ${why}`));
        }
      }
      if (states.some((st) => st.killed)) return reject(new TtsError('engine-failed', 'synthesis pipeline failed'));
      resolve(Buffer.concat(chunks));
    };

    for (const [i, stage] of stages.entries()) {
      const st = states[i]!;
      let child: ChildProcess;
      try {
        child = spawn(stage.command, stage.args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true });
      } catch (err) {
        st.startError = err as Error;
        killAll();
        break;
      }
      st.child = child;
      open++;
      // A child that dies early makes writes to its stdin fail with EPIPE; its exit status
      // reports the real problem, so the stream errors themselves carry no information.
      child.stdin?.on('error', () => {});
      child.stdout?.on('error', () => {});
      child.stderr?.on('data', (d: Buffer) => {
        if (st.stderr.length < STDERR_KEEP) st.stderr = (st.stderr + d.toString('utf8')).slice(0, STDERR_KEEP);
      });
      child.on('error', (err) => {
        st.startError ??= err;
        killAll();
      });
      child.on('close', (code, signal) => {
        st.exit = { code, signal };
        // A stage that fails on its own leaves its neighbours blocked on a pipe nobody drains.
        if (code !== 0 && !killing) killAll();
        if (--open === 0) settle();
      });
      const prev = states[i - 1]?.child;
      if (prev?.stdout && child.stdin) prev.stdout.pipe(child.stdin);
    }

    if (killing) {
      if (open === 0) settle();
      return;
    }
    states[states.length - 1]?.child?.stdout?.on('data', (d: Buffer) => chunks.push(d));
    states[0]?.child?.stdin?.end(opts.input);
  });
}
