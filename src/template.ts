/**
 * Merge fields: `{name}` is replaced by the value of `name`. Seed 000 writes `{TEL}` for the
 * caller's number, so callers of render() put TEL in the variables as an alias.
 * `{{` and `}}` write literal braces. A field with no value renders as an empty string, and the
 * names of such fields are reported so a step can log them.
 */
export type Vars = Readonly<Record<string, string | number | undefined>>;
export type Escape = (value: string) => string;

const FIELD = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g;

export const escapers = {
  none: (v: string) => v,
  /** a value inside application/x-www-form-urlencoded or a query string */
  form: (v: string) => encodeURIComponent(v).replace(/%20/g, '+'),
  url: (v: string) => encodeURIComponent(v),
  /** a value inside a JSON string literal (without the quotes) */
  json: (v: string) => JSON.stringify(v).slice(1, -1),
  /**
   * a value inside XML text or an attribute. Tab, CR and LF become character references: an XML
   * parser turns a raw CR LF into LF, and each of them into a space inside an attribute.
   */
  xml: (v: string) =>
    v
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
      .replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`),
} satisfies Record<string, Escape>;

export interface Rendered {
  text: string;
  missing: string[];
}

export function render(template: string, vars: Vars, escape: Escape = escapers.none): Rendered {
  const missing: string[] = [];
  const text = template.replace(FIELD, (whole, name: string | undefined) => {
    if (whole === '{{') return '{';
    if (whole === '}}') return '}';
    const value = vars[name!];
    if (value === undefined || value === '') {
      if (value === undefined) missing.push(name!);
      return '';
    }
    return escape(String(value));
  });
  return { text, missing };
}

/** The merge-field names a template uses; config validation checks them against the known ones. */
export function fieldsOf(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(FIELD)) if (m[1]) names.push(m[1]);
  return names;
}
