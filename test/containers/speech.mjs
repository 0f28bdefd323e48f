// Run inside the service image by run.sh (node /check/speech.mjs): the service's own speech engines
// speak a Japanese sentence in kanji (Open JTalk with its dictionary and voice) and an English one
// (espeak-ng), both through sox, as the image ships them. Fails unless each is 8 kHz mono 16-bit
// WAV of a plausible length that is not silence. Prints one line per language.
import { createOpenJtalkEngine } from '/opt/call-actions/dist/tts/openjtalk.js';
import { createEspeakEngine } from '/opt/call-actions/dist/tts/espeak.js';

const cases = [
  // 本日 and 担当者 are words only the dictionary can read; without it Open JTalk says nothing useful
  { language: 'ja', engine: createOpenJtalkEngine({}), text: '本日はお電話ありがとうございます。担当者におつなぎします。', min: 2, max: 15 },
  { language: 'en', engine: createEspeakEngine({}), text: 'We have sent you a text message. Goodbye.', min: 1.5, max: 10 },
];

let failed = false;
for (const c of cases) {
  let wav;
  try {
    wav = await c.engine.synthesize(c.text, { language: c.language });
  } catch (err) {
    console.log(`${c.language}: FAIL ${err instanceof Error ? err.message : String(err)}`);
    failed = true;
    continue;
  }
  const format = wav.subarray(0, 4).toString('latin1') + '/' + wav.subarray(8, 12).toString('latin1');
  const channels = wav.readUInt16LE(22);
  const rate = wav.readUInt32LE(24);
  const bits = wav.readUInt16LE(34);
  const dataAt = wav.indexOf('data', 12, 'latin1');
  const samples = dataAt < 0 ? 0 : Math.floor((wav.length - dataAt - 8) / 2);
  let peak = 0;
  for (let i = 0; i < samples; i++) peak = Math.max(peak, Math.abs(wav.readInt16LE(dataAt + 8 + 2 * i)));
  const seconds = samples / (rate || 1);
  const problems = [];
  if (format !== 'RIFF/WAVE') problems.push(`not a WAV (${format})`);
  if (rate !== 8000 || channels !== 1 || bits !== 16) problems.push(`${rate} Hz, ${channels} channel(s), ${bits} bit, expected 8000 Hz mono 16 bit`);
  if (seconds < c.min || seconds > c.max) problems.push(`${seconds.toFixed(2)} s of speech, expected ${c.min}-${c.max} s`);
  if (peak < 1000) problems.push(`peak ${peak}: silence`);
  console.log(`${c.language}: ${problems.length ? 'FAIL ' + problems.join('; ') : 'ok'} (${seconds.toFixed(2)} s, peak ${peak}, ${wav.length} bytes)`);
  if (problems.length) failed = true;
}
process.exit(failed ? 1 : 0);
