import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { rootSchema } from '../../src/app/config-schema.js';
import { isOpen, scheduleSchema } from '../../src/routing/schedule.js';
import { REPO_ROOT } from '../helpers/asterisk.js';

const ENV = { ARI_USER: 'u', ARI_PASSWORD: 'p' };
const HEAD = `asterisk:
  ari: { user: "\${ARI_USER}", password: "\${ARI_PASSWORD}" }
sms:
  providers:
    p: { kind: http, url: "http://127.0.0.1:9/send", body: { to: "{to}", text: "{message}" } }
  templates:
    link: "https://example.com/{caller}"
`;

function issues(text: string): Array<{ line?: number; field: string; message: string }> {
  try {
    parseConfigText(HEAD + text, 'cfg.yaml', rootSchema, ENV);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues as never;
    throw e;
  }
  return [];
}

describe('routing config', () => {
  it('the complete example of docs/routing.md is valid as written', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/routing.md'), 'utf8');
    const example = /## A complete example\s+```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const env = { ...ENV, AMI_USER: 'a', AMI_SECRET: 'b', SMS_USER: 'u', SMS_PASSWORD: 'p', CRM_TOKEN: 't' };
    const { value } = parseConfigText(example!, 'routing.md', rootSchema, env);
    expect(Object.keys(value.stages)).toEqual(['welcome', 'office-hours', 'customer-number']);
    expect(Object.keys(value.routing.integrations)).toEqual(['siparis']);
  });

  it('the sketch\'s welcome stage and destinations are valid as written', () => {
    expect(
      issues(`stages:
  welcome:
    - route:
        url: https://crm.example.com/route
        encoding: json
        fields: { caller: arayan_no, called: aranan_no, pbx: santral_no, callId: arama_id, digits: tus_bilgisi }
        extra: { test: "1234" }
        timeout: 3s
        language: tr
        results:
          "1": { queue: vip }
          "2": { extension: "101" }
        fallback: { queue: support }
destinations:
  queue: { context: call-actions-dest, exten: "queue-{name}" }
  extension: { context: from-internal, exten: "{name}" }
  voicemail: { context: call-actions-dest, exten: "vm-{name}" }
`),
    ).toEqual([]);
  });

  it('names that do not exist, a dial without a dial string and missing SMS settings are errors with their line', () => {
    const text = `stages:
  welcome:
    - route:
        url: https://crm.example.com/route
        results: { "1": { announcement: nosuch }, "2": { dial: "+902121234567" } }
        fallback: { menu: main }
        schedule: office
routing:
  menus:
    main: { prompt: "Press 1", options: { "1": { queue: support }, "2": { interactivemenu: other } } }
  timeconditions:
    t: { schedule: nosuch, open: { queue: a }, closed: { hangup: {} } }
  sms:
    s: { description: d, provider: nosuch, template: nope }
`;
    const got = issues(text).map((i) => `${i.line}: ${i.field}: ${i.message}`);
    const line = (needle: string) => HEAD.split('\n').length - 1 + text.split('\n').findIndex((l) => l.includes(needle)) + 1;
    expect(got.sort()).toEqual(
      [
        `${line('announcement: nosuch')}: stages.welcome[0].route.results.1: no announcement "nosuch" under routing.announcements (none defined)`,
        `${line('announcement: nosuch')}: stages.welcome[0].route.results.2: dial needs destinations.dial with a dialString`,
        `${line('schedule: office')}: stages.welcome[0].route.schedule: no schedule "office" under routing.schedules (known: none)`,
        `${line('interactivemenu: other')}: routing.menus.main.options.2: no interactivemenu "other" under routing.integrations (none defined)`,
        `${line('schedule: nosuch')}: routing.timeconditions.t.schedule: no schedule "nosuch" under routing.schedules (known: none)`,
        `${line('provider: nosuch')}: routing.sms.s.provider: unknown provider "nosuch" (known: p)`,
        `${line('provider: nosuch')}: routing.sms.s.template: unknown template "nope" (known: link)`,
      ].sort(),
    );
  });

  it('a key that is not a key, a time zone and days that do not exist are errors', () => {
    const got = issues(`routing:
  menus:
    main: { prompt: "Press 1", options: { "1": { queue: support }, "x": { hangup: {} } } }
  schedules:
    bad: { timezone: Mars/Olympus, weekly: { monday-friday: "9-18", mon: "09:00-25:00" } }
`).map((i) => `${i.field}: ${i.message}`);
    expect(got.sort()).toEqual([
      'routing.menus.main.options.x: "x" is not a key: 0-9, * or #',
      'routing.schedules.bad.timezone: an IANA time zone such as Europe/Istanbul',
    ]);
    const days = issues(`routing:
  schedules:
    bad: { timezone: Europe/Warsaw, weekly: { monday-friday: "09:00-18:00", mon: "09:00-25:00" } }
`).map((i) => `${i.field}: ${i.message}`);
    expect(days.sort()).toEqual([
      'routing.schedules.bad.weekly.mon: "09:00-25:00" is not a time range like 09:00-18:00',
      'routing.schedules.bad.weekly.monday-friday: "monday-friday" is not a day (mon … sun, a range like mon-fri, or daily)',
    ]);
  });

  it('a queue name that would reach dialplan arguments is refused in the config too', () => {
    const got = issues(`stages:
  welcome:
    - route: { url: "https://crm.example.com/route", fallback: { queue: "support,t" } }
`);
    expect(got.map((i) => i.message)).toEqual(['"support,t" is not a usable queue name (letters, digits, _ . + -; at most 64)']);
  });

  it('a misspelt destination kind names the known ones', () => {
    const got = issues(`stages:
  welcome:
    - route: { url: "https://crm.example.com/route", fallback: { queu: support } }
`);
    expect(got[0]!.message).toMatch(/^unknown destination "queu" \(known: dial, announcement, menu, timecondition, sms, queue, extension, voicemail, hangup, interactivemenu, continue, integration\)$/);
  });

  it('gather: minDigits above maxDigits, and a terminator that is not a key, are errors', () => {
    const got = issues(`stages:
  welcome:
    - gather: { maxDigits: 4, minDigits: 6, terminator: "x" }
`);
    expect(got.map((i) => i.field)).toEqual(expect.arrayContaining(['stages.welcome[0].gather.terminator']));
    expect(got.length).toBeGreaterThanOrEqual(1);
  });
});

describe('weekly schedules in a time zone', () => {
  const istanbul = scheduleSchema.parse({
    timezone: 'Europe/Istanbul',
    weekly: { 'mon-fri': '09:00-12:00, 13:00-18:00', sat: '10:00-14:00', fri: '22:00-02:00' },
    holidays: ['2026-10-29'],
  });
  const at = (iso: string) => isOpen(istanbul, new Date(iso));

  it('office hours in Istanbul (UTC+3) whatever the machine\'s zone', () => {
    // Monday 2026-11-23
    expect(at('2026-11-23T05:59:00Z')).toBe(false); // 08:59
    expect(at('2026-11-23T06:00:00Z')).toBe(true); // 09:00
    expect(at('2026-11-23T09:30:00Z')).toBe(false); // 12:30, lunch
    expect(at('2026-11-23T14:59:00Z')).toBe(true); // 17:59
    expect(at('2026-11-23T15:00:00Z')).toBe(false); // 18:00
    // Saturday and Sunday
    expect(at('2026-11-28T08:00:00Z')).toBe(true); // Sat 11:00
    expect(at('2026-11-29T08:00:00Z')).toBe(false); // Sun 11:00
  });

  it('a range past midnight runs into the next day; a holiday closes the whole local day', () => {
    expect(at('2026-11-27T19:30:00Z')).toBe(true); // Fri 22:30
    expect(at('2026-11-27T22:59:00Z')).toBe(true); // Sat 01:59
    expect(at('2026-11-27T23:00:00Z')).toBe(false); // Sat 02:00
    // Thursday 2026-10-29 is a holiday: closed at 10:00 local, open the day after
    expect(at('2026-10-29T07:00:00Z')).toBe(false);
    expect(at('2026-10-30T07:00:00Z')).toBe(true);
    // 2026-10-28 23:30 UTC is already the 29th in Istanbul
    expect(at('2026-10-28T20:59:00Z')).toBe(false);
  });

  it('follows daylight saving time (New York, 2026-03-08)', () => {
    const ny = scheduleSchema.parse({ timezone: 'America/New_York', weekly: { 'mon-fri': '09:00-17:00' } });
    expect(isOpen(ny, new Date('2026-03-06T14:00:00Z'))).toBe(true); // Fri 09:00 EST
    expect(isOpen(ny, new Date('2026-03-09T12:59:00Z'))).toBe(false); // Mon 08:59 EDT
    expect(isOpen(ny, new Date('2026-03-09T13:00:00Z'))).toBe(true); // Mon 09:00 EDT
  });
});
