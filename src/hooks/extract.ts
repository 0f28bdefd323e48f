/**
 * Variable extraction (CA4): a value taken from a hook's answer becomes a call variable that later
 * hooks and steps of the same call use as `{name}`. Two ways to point at it, as the seed's
 * "変数抽出パターン" and JSON APIs need: a regular expression (`/ticket=(\d+)/`: its first capture
 * group, or the group named like the variable, or the whole match), or a JSON path (`$.data.id`,
 * `$.items[0].name`, `$['odd key']`).
 */

import { LinearRegex } from '../config/regex.js';

export type PathSegment = string | number;

export type Extractor =
  | { kind: 'regex'; source: string; re: LinearRegex }
  | { kind: 'json'; source: string; path: PathSegment[] };

const REGEX_FORM = /^\/(.*)\/([dimsuvy]*)$/s;

/** Parses the config form; throws an Error whose message the config loader shows. */
export function parseExtractor(source: string): Extractor {
  const s = source.trim();
  if (s.startsWith('$')) return { kind: 'json', source, path: parseJsonPath(s) };
  const m = REGEX_FORM.exec(s);
  if (!m) throw new Error(`"${source}" is neither a /regular expression/ nor a JSON path starting with $`);
  return { kind: 'regex', source, re: LinearRegex.parse(s) };
}

export function parseJsonPath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 1;
  const fail = (why: string): never => {
    throw new Error(`JSON path "${path}": ${why} at character ${i + 1}`);
  };
  while (i < path.length) {
    const c = path[i];
    if (c === '.') {
      const m = /^[A-Za-z_$][A-Za-z0-9_$-]*/.exec(path.slice(i + 1));
      if (!m) fail('expected a field name after "."');
      out.push(m![0]);
      i += 1 + m![0].length;
    } else if (c === '[') {
      const rest = path.slice(i);
      const index = /^\[(\d+)\]/.exec(rest);
      const quoted = /^\[\s*(['"])((?:\\.|(?!\1).)*)\1\s*\]/.exec(rest);
      if (index) {
        out.push(Number(index[1]));
        i += index[0].length;
      } else if (quoted) {
        out.push(quoted[2]!.replace(/\\(.)/g, '$1'));
        i += quoted[0].length;
      } else {
        fail('expected [number] or [\'name\']');
      }
    } else {
      fail(`unexpected "${c}"`);
    }
  }
  return out;
}

export interface Extraction {
  values: Record<string, string>;
  /** Names whose pattern or path found nothing in this answer. */
  notFound: string[];
}

export function extract(extractors: ReadonlyArray<{ name: string; from: Extractor }>, body: string): Extraction {
  const values: Record<string, string> = {};
  const notFound: string[] = [];
  let parsed: { ok: true; value: unknown } | { ok: false } | undefined;
  for (const { name, from } of extractors) {
    let value: string | undefined;
    if (from.kind === 'regex') {
      const m = from.re.exec(body);
      if (m) value = m.groups?.[name] ?? m[1] ?? m[0];
    } else {
      if (!parsed) {
        try {
          parsed = { ok: true, value: JSON.parse(body) as unknown };
        } catch {
          parsed = { ok: false };
        }
      }
      if (parsed.ok) value = stringify(walk(parsed.value, from.path));
    }
    if (value === undefined) notFound.push(name);
    else values[name] = value;
  }
  return { values, notFound };
}

function walk(value: unknown, path: readonly PathSegment[]): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if (typeof seg === 'number') {
      if (!Array.isArray(v)) return undefined;
      v = v[seg];
    } else {
      if (Array.isArray(v) || !Object.hasOwn(v, seg)) return undefined;
      v = (v as Record<string, unknown>)[seg];
    }
  }
  return v;
}

function stringify(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
