import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startRouteApi, type RouteApiStandIn } from '../standins/route-api.js';
import { AmiLog } from './ami-log.js';
import { startWithConfig, type LogLine, type RunningService } from './service.js';

/** What each routing e2e file starts once: the customer's API (a stand-in), an AMI log, and the service. */
export interface RoutingPbx {
  api: RouteApiStandIn;
  ami: AmiLog;
  service: RunningService;
  close(): Promise<void>;
}

/** `sections` is the config below `asterisk:`, made once the stand-in API has its address. */
export async function startRoutingPbx(sections: (api: RouteApiStandIn) => string, env?: Record<string, string>): Promise<RoutingPbx> {
  const api = await startRouteApi();
  const ami = await AmiLog.open();
  const close = async (service?: RunningService) => {
    await service?.kill();
    await api.close();
    await ami.close();
  };
  try {
    const service = await startWithConfig(sections(api), { env });
    return { api, ami, service, close: () => close(service) };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Seconds of audio in one of the service's TTS files (8 kHz, 16-bit mono: 16,000 bytes a second). */
export function wavInfo(file: string): { seconds: number; peak: number; rms: number } {
  const buf = readFileSync(file);
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'data') {
      const start = off + 8;
      const end = Math.min(buf.length, start + size);
      let peak = 0;
      let sum = 0;
      let n = 0;
      for (let i = start; i + 1 < end; i += 2) {
        const v = buf.readInt16LE(i);
        peak = Math.max(peak, Math.abs(v));
        sum += v * v;
        n++;
      }
      return { seconds: (end - start) / 16000, peak, rms: n ? Math.sqrt(sum / n) : 0 };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

/** The TTS file behind a `sound:http://…/media/<id>.wav` media URI. */
export function mediaFile(service: RunningService, media: string): string {
  const id = /\/media\/([0-9a-f]{32})\.wav$/.exec(media)?.[1];
  if (!id) throw new Error(`not a TTS media URI: ${media}`);
  return join(service.dir, 'tts', `${id}.wav`);
}

/**
 * The answer's data was spoken to the end before the call left: the playback lasted as long as
 * the audio, and whatever shows the destination was reached (an AMI event's arrival time) came
 * after it finished.
 */
export async function expectSpokenBeforeRouting(service: RunningService, callId: string, reachedAt: number): Promise<LogLine> {
  const played = (await service.settled()).find((l) => l.callId === callId && l.msg === 'prompt played' && l.what === 'data');
  expect(played, `no data playback for call ${callId}`).toBeDefined();
  expect(played!.outcome).toBe('done');
  const audio = wavInfo(mediaFile(service, String(played!.media)));
  expect(audio.seconds).toBeGreaterThan(0.3);
  expect(Number(played!.ms)).toBeGreaterThanOrEqual(audio.seconds * 1000 - 150);
  expect(reachedAt).toBeGreaterThanOrEqual(played!.time);
  return played!;
}
