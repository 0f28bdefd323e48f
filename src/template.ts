import { LONE_SURROGATE, wellFormed } from './unicode.js';

/**
 * Merge fields: `{name}` is replaced by the value of `name`. Seed 000 writes `{TEL}` for the
 * caller's number, so callers of render() put TEL in the variables as an alias.
 * `{{` and `}}` write literal braces. A field with no value renders as an empty string, and the
 * names of such fields are reported so a step can log them.
 */
export type Vars = Readonly<Record<string, string | number | undefined>>;
export type Escape = (value: string) => string;

const FIELD = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g;


// XML 1.0 allows no C0 control but tab, LF and CR, not even as a character reference; nor U+FFFE/U+FFFF.
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

// What an HTTP header value carries as it is: visible ASCII and inner spaces. '%' is encoded too,
// so the receiver decodes every value the same way (decodeURIComponent) and gets the original.
const HEADER_UNSAFE = /[^\x20-\x24\x26-\x7E]|^ | $/gu;

export const escapers = {
  none: (v: string) => v,
  /** a value inside application/x-www-form-urlencoded or a query string */
  form: (v: string) => encodeURIComponent(wellFormed(v)).replace(/%20/g, '+'),
  url: (v: string) => encodeURIComponent(wellFormed(v)),
  /**
   * a value inside an HTTP header. Non-ASCII (山田太郎), controls (NUL, CR, LF, tab), '%' and a
   * space at either end are percent-encoded as UTF-8 (RFC 3986 / RFC 8187's value-chars): undici
   * refuses the request otherwise, and a CR LF could split the header block. Printable ASCII is
   * sent as it is.
   */
  header: (v: string) => wellFormed(v).replace(HEADER_UNSAFE, (c) => encodeURIComponent(c)),
  /** a value inside a JSON string literal (without the quotes) */
  json: (v: string) => JSON.stringify(v).slice(1, -1),
  /**
   * a value inside XML text or an attribute. Tab, CR and LF become character references: an XML
   * parser turns a raw CR LF into LF, and each of them into a space inside an attribute. What XML
   * 1.0 cannot carry at all (other C0 controls, U+FFFE/U+FFFF, lone surrogates) becomes U+FFFD.
   */
  xml: (v: string) =>
    v
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
      .replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`)
      .replace(XML_FORBIDDEN, '\uFFFD')
      .replace(LONE_SURROGATE, '\uFFFD'),
} satisfies Record<string, Escape>;

export interface Rendered {
  text: string;
  missing: string[];
}

export function render(template: string, vars: Vars, escape: Escape = escapers.none): Rendered {
  return compileTemplate(template)(vars, escape);
}

/**
 * A template read once into its text and its fields, for one that is rendered for every call
 * (a request's URL, headers and body): the text between the fields is not searched again.
 */
export type CompiledTemplate = ((vars: Vars, escape?: Escape, own?: Vars) => Rendered) & {
  /** the template has no merge field: it renders the same text whatever the call */
  readonly constant: boolean;
};

export function compileTemplate(template: string): CompiledTemplate {
  // texts[i] comes before names[i]; the last text follows the last name
  const texts: string[] = [];
  const names: string[] = [];
  let text = '';
  let at = 0;
  for (const m of template.matchAll(FIELD)) {
    text += template.slice(at, m.index);
    at = m.index + m[0].length;
    if (m[0] === '{{') text += '{';
    else if (m[0] === '}}') text += '}';
    else {
      texts.push(text);
      names.push(m[1]!);
      text = '';
    }
  }
  text += template.slice(at);
  const last = text;
  if (!names.length) return Object.assign(() => ({ text: last, missing: [] }), { constant: true });
  // `own`: fields of the caller's own that come before `vars` (the routing request's call facts),
  // so that they need not be laid over a call's fields in a new object for every call
  const compiled = (vars: Vars, escape: Escape = escapers.none, own?: Vars): Rendered => {
    const missing: string[] = [];
    let out = '';
    for (let i = 0; i < names.length; i++) {
      out += texts[i]!;
      const name = names[i]!;
      const value = own !== undefined && Object.hasOwn(own, name) ? own[name] : vars[name];
      if (value === undefined || value === '') {
        if (value === undefined) missing.push(name);
      } else {
        out += escape(wellFormed(String(value)));
      }
    }
    return { text: out + last, missing };
  };
  return Object.assign(compiled, { constant: false });
}

/** The merge-field names a template uses; config validation checks them against the known ones. */
export function fieldsOf(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(FIELD)) if (m[1]) names.push(m[1]);
  return names;
}
