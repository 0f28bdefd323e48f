import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, type RouteApiStandIn } from '../standins/route-api.js';
import { ttsId } from '../../src/tts/cache.js';
import type { AmiLog } from '../helpers/ami-log.js';
import { readAsteriskEnv } from '../helpers/asterisk.js';
import { placeCall } from '../helpers/route-caller.js';
import { expectSpokenBeforeRouting, mediaFile, wavInfo, startRoutingPbx, type RoutingPbx } from '../helpers/routing.js';
import type { RunningService } from '../helpers/service.js';

/**
 * T1 on the real PBX: the answer's data in Japanese (Open JTalk), Turkish and Polish (espeak-ng)
 * becomes audio that is not silence, Asterisk fetches it over HTTP and plays it to the SIP caller
 * to the end; an all-caps answer is spoken as words.
 */

let api: RouteApiStandIn;
let service: RunningService;
let ami: AmiLog;
let pbx: RoutingPbx | undefined;
let n = 0;

beforeAll(async () => {
  ({ api, ami, service } = pbx = await startRoutingPbx(
    (api) => {
      const stage = (lang: string) => `\n    - route: { url: "${api.endpoint}", language: ${lang}, fallback: { hangup: {} } }`;
      return `stages:
  t541:${stage('ja')}
  t542:${stage('tr')}
  t543:${stage('pl')}
  t544:${stage('en')}
destinations:
  extension: { context: test-internal, exten: "{name}" }
`;
    },
  ));
});
afterAll(() => pbx?.close());

async function spoken(exten: string, data: string) {
  const caller = `+3375555${String(++n).padStart(4, '0')}`;
  api.respond = () => json({ status: 'success', result: 'extensions', redirect: '103', data });
  const logFrom = statSync(readAsteriskEnv().logFile).size;
  const placed = placeCall({ service: exten, from: caller, holdMs: 9000 });
  const linkedId = await ami.linkedIdOf(caller);
  const result = await placed;
  expect(result.code, result.stdout.slice(-800)).toBe(0);
  const dial = await ami.waitFor((e) => e.linkedid === linkedId && e.event === 'DialBegin', 10_000, 'DialBegin');
  const played = await expectSpokenBeforeRouting(service, linkedId, Number(dial.receivedAt));
  const channel = ami.ofCall(linkedId).find((e) => e.event === 'Newchannel')!.channel!;
  return { played, channel, media: String(played.media), logFrom };
}

/** What Asterisk logged since `from`: a test PBX's log keeps every earlier run's lines, and can grow past the longest string Node makes. */
function asteriskLogSince(from: number): string {
  const file = readAsteriskEnv().logFile;
  const buf = Buffer.alloc(Math.max(0, statSync(file).size - from));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}

describe('the answer\'s data is spoken in the step\'s language', () => {
  for (const [lang, exten, text] of [
    ['Japanese', '541', '山田様、お電話ありがとうございます。担当者におつなぎします。'],
    ['Turkish', '542', 'Sayın Ayşe Yılmaz, hoş geldiniz. Sizi müşteri temsilcinize aktarıyorum.'],
    ['Polish', '543', 'Dzień dobry, pani Żaneto. Łączymy z konsultantem.'],
  ] as const) {
    it(`${lang}: non-silent audio that Asterisk fetches and plays to the end`, async () => {
      const { played, channel, media, logFrom } = await spoken(exten, text);
      const audio = wavInfo(mediaFile(service, media));
      expect(audio.seconds).toBeGreaterThan(1.5);
      expect(audio.rms).toBeGreaterThan(300);
      expect(audio.peak).toBeGreaterThan(3000);
      expect(Number(played.ms)).toBeGreaterThanOrEqual(audio.seconds * 1000 - 150);
      const id = /([0-9a-f]{32})\.wav$/.exec(media)![1]!;
      const asteriskLog = asteriskLogSince(logFrom);
      expect(asteriskLog).toMatch(new RegExp(`<${channel.replace(/[/-]/g, '\\$&')}> Playing 'http://127\\.0\\.0\\.1:\\d+/media/${id}\\.wav`));
    });
  }

  it('all-caps data is spoken as words: the audio is that of the normalised text', async () => {
    const { media } = await spoken('544', 'PLEASE CALL US NOW');
    const id = /([0-9a-f]{32})\.wav$/.exec(media)![1];
    expect(id).toBe(ttsId({ engine: 'espeak-ng', language: 'en', text: 'Please Call Us Now' }));
    expect(id).not.toBe(ttsId({ engine: 'espeak-ng', language: 'en', text: 'PLEASE CALL US NOW' }));
  });
});
