import { z } from 'zod';

/**
 * A weekly schedule in a named time zone with holiday dates (the seed's "zaman ayarı"): office
 * hours per weekday, closed on the listed local dates. Times are the zone's wall-clock time, so a
 * schedule means the same whatever zone the machine runs in and across daylight-saving changes.
 */

export interface Schedule {
  timezone: string;
  /** Minutes from local midnight, per weekday (0 Sunday … 6 Saturday); end may be 1440. */
  days: Array<Array<[number, number]>>;
  /** Local dates YYYY-MM-DD on which it is closed all day. */
  holidays: Set<string>;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function parseDays(spec: string): number[] | string {
  const out = new Set<number>();
  for (const part of spec.toLowerCase().split(',').map((p) => p.trim())) {
    if (part === 'daily' || part === 'everyday') {
      for (let d = 0; d < 7; d++) out.add(d);
      continue;
    }
    const m = /^([a-z]{3})(?:-([a-z]{3}))?$/.exec(part);
    const from = m ? DAY_NAMES.indexOf(m[1] as (typeof DAY_NAMES)[number]) : -1;
    const to = m?.[2] ? DAY_NAMES.indexOf(m[2] as (typeof DAY_NAMES)[number]) : from;
    if (from < 0 || to < 0) return `"${part}" is not a day (mon … sun, a range like mon-fri, or daily)`;
    // mon-fri, and also fri-mon across the weekend
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return [...out];
}

function parseRanges(v: string | string[]): Array<[number, number]> | string {
  const parts = (Array.isArray(v) ? v : v.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  const out: Array<[number, number]> = [];
  for (const p of parts) {
    const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(p);
    if (!m) return `"${p}" is not a time range like 09:00-18:00`;
    const start = Number(m[1]) * 60 + Number(m[2]);
    const end = Number(m[3]) * 60 + Number(m[4]);
    if (Number(m[2]) > 59 || Number(m[4]) > 59 || start > 1439 || end > 1440) return `"${p}" is not a time range like 09:00-18:00`;
    if (start === end) return `"${p}" is empty`;
    out.push([start, end]);
  }
  return out;
}

export const scheduleSchema = z
  .object({
    timezone: z.string().refine(validZone, 'an IANA time zone such as Europe/Istanbul'),
    weekly: z
      .record(z.string(), z.union([z.string(), z.array(z.string())]))
      .describe('days → time ranges, e.g. { mon-fri: "09:00-12:00, 13:00-18:00", sat: "10:00-14:00" }; 22:00-06:00 runs past midnight'),
    holidays: z
      .array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD'))
      .default([])
      .describe('local dates closed all day'),
  })
  .strict()
  .transform((v, ctx): Schedule => {
    const days: Array<Array<[number, number]>> = Array.from({ length: 7 }, () => []);
    for (const [spec, ranges] of Object.entries(v.weekly)) {
      const d = parseDays(spec);
      if (typeof d === 'string') {
        ctx.addIssue({ code: 'custom', path: ['weekly', spec], message: d });
        continue;
      }
      const r = parseRanges(ranges);
      if (typeof r === 'string') {
        ctx.addIssue({ code: 'custom', path: ['weekly', spec], message: r });
        continue;
      }
      for (const day of d) days[day]!.push(...r);
    }
    return { timezone: v.timezone, days, holidays: new Set(v.holidays) };
  });

interface LocalTime {
  date: string;
  weekday: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

export function localTime(at: Date, timezone: string): LocalTime {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timezone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(at)) p[part.type] = part.value;
  const weekday = DAY_NAMES.indexOf((p.weekday ?? '').toLowerCase().slice(0, 3) as (typeof DAY_NAMES)[number]);
  return { date: `${p.year}-${p.month}-${p.day}`, weekday, minute: Number(p.hour) * 60 + Number(p.minute) };
}

export function isOpen(s: Schedule, at: Date = new Date()): boolean {
  const t = localTime(at, s.timezone);
  if (s.holidays.has(t.date)) return false;
  for (const [start, end] of s.days[t.weekday] ?? []) {
    if (end > start ? t.minute >= start && t.minute < end : t.minute >= start) return true;
  }
  // the part after midnight of yesterday's overnight ranges
  for (const [start, end] of s.days[(t.weekday + 6) % 7] ?? []) {
    if (end < start && t.minute < end) return true;
  }
  return false;
}
