import { RE2JS } from 're2js';

/**
 * Regular expressions from the config run on text a caller or an outside API controls (a caller
 * name in a hook condition, a provider's answer in an error pattern, an extraction, a number an
 * API asks us to dial). JavaScript's RegExp backtracks: `/^(\w+\s?)+$/` on 26 letters and a `!`
 * blocks the event loop for seconds, for every call. These run on re2js instead, a pure-JS port of
 * RE2 (automata, no backtracking): time linear in the input, whatever the pattern.
 *
 * Why re2js and not the `re2` native addon: the same guarantee without compiling RE2 and Abseil
 * from source at every `npm ci` and in the image's build stage; matching is slower than native
 * but a 1,000-character answer takes well under a millisecond. Why not a load-time "is this
 * pattern dangerous" check: such checks miss patterns (polynomial cases, overlapping
 * alternations), an engine cannot.
 *
 * What RE2 cannot run is refused at load with the reason (the loader adds file:line:col):
 * backreferences (`\1`, `\k<name>`), lookahead and lookbehind, the `y` and `v` flags. RE2's
 * `\s`, `\d`, `\w` and `\b` are ASCII-only; everything else an admin writes (classes, groups,
 * named groups, `i` `m` `s` flags, `{n,m}` up to 1000) works as in JavaScript.
 */
export class LinearRegex {
  private constructor(
    private readonly re: RE2JS,
    /** as written, e.g. /300/i */
    readonly source: string,
  ) {}

  /** Compiles "/pattern/flags" or a bare pattern; throws an Error saying what is unsupported. */
  static parse(written: string): LinearRegex {
    const m = /^\/(.*)\/([a-z]*)$/s.exec(written);
    const pattern = m ? m[1]! : written;
    const flags = m ? m[2]! : '';
    return new LinearRegex(compile(pattern, flags, written), m ? written : `/${written}/`);
  }

  /** Does the pattern match anywhere in `text`? */
  test(text: string): boolean {
    return this.re.test(text);
  }

  /** The first match, shaped like RegExp's (index, groups), or null. */
  exec(text: string): RegExpExecArray | null {
    return this.re.exec(text) as RegExpExecArray | null;
  }

  toString(): string {
    return this.source;
  }
}

const FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, g: 0, u: 0, d: 0 };

function compile(pattern: string, flags: string, written: string): RE2JS {
  let bits = 0;
  for (const f of flags) {
    if (!(f in FLAGS)) throw new Error(`regular expression ${written}: flag "${f}" is not supported (use i, m, s)`);
    bits |= FLAGS[f]!;
  }
  const unsupported = unsupportedFeature(pattern);
  if (unsupported) throw new Error(`regular expression ${written}: ${unsupported} is not supported (patterns run on a linear-time engine, RE2)`);
  try {
    // JavaScript's own syntax check first: what it refuses is a plain typo, whatever the engine
    new RegExp(pattern, flags.replace(/[^ims]/g, ''));
  } catch (e) {
    throw new Error(`invalid regular expression ${written}: ${(e as Error).message}`);
  }
  try {
    return RE2JS.compile(RE2JS.translateRegExp(pattern), bits);
  } catch (e) {
    throw new Error(`regular expression ${written} cannot run on the linear-time engine (RE2): ${(e as Error).message}`);
  }
}

/** Names the JavaScript feature RE2 lacks, for an error an admin can act on. */
function unsupportedFeature(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) return `a backreference (\\${next})`;
      if (!inClass && next === 'k' && pattern[i + 2] === '<') return 'a named backreference (\\k<…>)';
      i++;
    } else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (!inClass && c === '(' && pattern[i + 1] === '?') {
      const look = pattern.slice(i + 2, i + 4);
      if (look.startsWith('=') || look.startsWith('!')) return `a lookahead (?${look[0]}…)`;
      if (look === '<=' || look === '<!') return `a lookbehind (?${look}…)`;
    }
  }
  return undefined;
}
