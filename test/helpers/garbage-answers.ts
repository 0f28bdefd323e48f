/**
 * A generated corpus of answers a routing API must never be able to route with: broken syntax,
 * wrong shapes and types, statuses that are not success, results and redirects that name nothing
 * (or try to inject dialplan options), XML bombs, huge and binary bodies. Deterministic (seeded),
 * so a failure names a case that can be replayed.
 */

export interface GarbageCase {
  name: string;
  body: string | Buffer;
  contentType?: string;
  status?: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Redirects that must not reach a dialplan application's arguments, and results that name nothing. */
export const HOSTILE_NAMES = [
  'support,t', 'support|x', 'vip)', '${EXTEN}', 'a b', '../etc', '', ' ', 'queue-vip&PJSIP/1', '101,,,,1', 'x'.repeat(65), '10\n1', '1 01', '東京',
];
const BAD_RESULTS = ['', 'QUEUEX', 'route', 'goto', 'transfer', 'null', 'undefined', '0', '-1', 'success', 'error', '__proto__', 'constructor', 'ｑｕｅｕｅ'];
const BAD_STATUSES = ['ok', 'OK', 'succes', 'successful', 'fail', 'failed', '1', 'true', '', ' success x', 'SUCCESS!', 'null'];

export function garbageAnswers(count = 1200, seed = 4): GarbageCase[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const cases: GarbageCase[] = [];
  const add = (name: string, body: string | Buffer, contentType?: string, status?: number) => cases.push({ name, body, contentType, status });

  // Fixed families first: every kind of wrong appears at least once.
  add('empty', '');
  add('whitespace', '   \n\t ');
  add('null', 'null', 'application/json');
  add('array', '[{"status":"success","result":"queue","redirect":"support"}]', 'application/json');
  add('string', '"success"', 'application/json');
  add('number', '42', 'application/json');
  add('html error page', '<html><body><h1>502 Bad Gateway</h1></body></html>', 'text/html');
  add('plain text', 'queue support', 'text/plain');
  add('xml bomb', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><response><status>success</status><result>queue</result><redirect>&c;</redirect></response>', 'application/xml');
  add('xml external entity', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><response><status>success</status><result>announcement</result><redirect>&x;</redirect></response>', 'application/xml');
  add('xml two roots', '<a><status>success</status></a><b/>', 'application/xml');
  add('xml repeated field', '<response><status>success</status><result>queue</result><redirect>support</redirect><redirect>vip</redirect></response>', 'application/xml');
  add('xml nested redirect', '<response><status>success</status><result>queue</result><redirect><name>support</name></redirect></response>', 'application/xml');
  add('xml unclosed', '<response><status>success</status><result>queue</result><redirect>support</redirect>', 'application/xml');
  add('xml no fields', '<response/>', 'application/xml');
  add('xml text root', '<response>success</response>', 'application/xml');
  add('deep json', '{"status":"success","result":"queue","redirect":' + '['.repeat(5000) + ']'.repeat(5000) + '}', 'application/json');
  add('huge data', JSON.stringify({ status: 'success', result: 'queue', redirect: 'support', data: 'a'.repeat(200_000) }), 'application/json');
  add('binary', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)), 'application/octet-stream');
  add('invalid utf-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'application/json');
  add('bom + garbage', '\uFEFF\uFEFF{', 'application/json');
  add('proto pollution', '{"__proto__":{"status":"success","result":"queue","redirect":"support"}}', 'application/json');
  add('http 500 with a valid body', JSON.stringify({ status: 'success', result: 'queue', redirect: 'support' }), 'application/json', 500);
  add('http 404 with a valid body', JSON.stringify({ status: 'success', result: 'queue', redirect: 'support' }), 'application/json', 404);
  add('http 302', '', 'text/plain', 302);
  add('status error', JSON.stringify({ status: 'error', result: 'queue', redirect: 'support', data: 'sorry' }), 'application/json');
  add('status error xml', '<response><status>error</status><result>queue</result><redirect>support</redirect></response>', 'application/xml');

  const kinds = ['queue', 'extensions', 'voicemail', 'announcement', 'menu', 'timecondition', 'sms', 'dial', 'dynamic', 'interactivemenu'];
  const generators: Array<() => void> = [
    // truncated valid JSON
    () => {
      const full = JSON.stringify({ status: 'success', result: pick(kinds), redirect: 'support', data: 'Hoş geldiniz' });
      add('truncated json', full.slice(0, 1 + Math.floor(r() * (full.length - 2))), 'application/json');
    },
    // truncated valid XML
    () => {
      const full = `<response><status>success</status><result>${pick(kinds)}</result><redirect>support</redirect></response>`;
      add('truncated xml', full.slice(0, 1 + Math.floor(r() * (full.length - 2))), 'application/xml');
    },
    // the API itself says it failed, with everything else looking fine
    () => add('status error', JSON.stringify({ status: pick(['error', 'ERROR', ' Error ']), result: pick(kinds), redirect: 'support', data: 'Bir hata oluştu' }), 'application/json'),
    // a status that is not success/error
    () => add('bad status', JSON.stringify({ status: pick(BAD_STATUSES), result: 'queue', redirect: 'support' }), 'application/json'),
    // status of the wrong type
    () => add('status type', JSON.stringify({ status: pick<unknown>([true, 1, null, ['success'], { v: 'success' }]), result: 'queue', redirect: 'support' }), 'application/json'),
    // missing status
    () => add('no status', JSON.stringify({ result: pick(kinds), redirect: 'support' }), 'application/json'),
    // a result that names nothing
    () => add('bad result', JSON.stringify({ status: 'success', result: pick(BAD_RESULTS), redirect: 'support' }), 'application/json'),
    // result of the wrong type
    () => add('result type', JSON.stringify({ status: 'success', result: pick<unknown>([true, ['queue'], { kind: 'queue' }, 1.5e300]), redirect: 'support' }), 'application/json'),
    // a named kind without a redirect
    () => add('no redirect', JSON.stringify({ status: 'success', result: pick(kinds.filter((k) => k !== 'interactivemenu')) }), 'application/json'),
    // a redirect that names nothing configured, or tries to inject
    () => add('unknown redirect', JSON.stringify({ status: 'success', result: pick(kinds), redirect: pick(HOSTILE_NAMES) || 'nosuch' }), 'application/json'),
    // redirect of the wrong type
    () => add('redirect type', JSON.stringify({ status: 'success', result: 'queue', redirect: pick<unknown>([['support'], { name: 'support' }, false]) }), 'application/json'),
    // data of the wrong type
    () => add('data type', JSON.stringify({ status: 'success', result: 'queue', redirect: 'support', data: pick<unknown>([{ t: 'x' }, ['x'], true]) }), 'application/json'),
    // the same wrongs as XML
    () => add('xml unknown redirect', `<response><status>success</status><result>${pick(kinds)}</result><redirect>${pick(HOSTILE_NAMES).replace(/&/g, '&amp;').replace(/</g, '&lt;') || 'nosuch'}</redirect></response>`, 'application/xml'),
    () => add('xml bad status', `<response><status>${pick(BAD_STATUSES)}</status><result>queue</result><redirect>support</redirect></response>`, 'application/xml'),
    // random bytes
    () => {
      const n = 1 + Math.floor(r() * 300);
      add('random bytes', Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256))), pick(['application/json', 'application/xml', 'text/plain', undefined]) as string | undefined);
    },
    // random printable text that starts like JSON or XML
    () => {
      const n = 1 + Math.floor(r() * 200);
      const chars = '{}[]<>"\':,/=!-?&;# \n\tabcdefstuqxyz0123456789';
      let s = pick(['{', '<', '']);
      for (let i = 0; i < n; i++) s += chars[Math.floor(r() * chars.length)];
      add('random text', s, pick(['application/json', 'application/xml', undefined]) as string | undefined);
    },
    // a valid answer with the wrong HTTP status
    () => add('http status', JSON.stringify({ status: 'success', result: 'queue', redirect: 'support' }), 'application/json', pick([400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504])),
  ];
  while (cases.length < count) pick(generators)();
  return cases;
}
