/**
 * A strict XML 1.0 reader for the hook receiver: elements, attributes, text, the five predefined
 * entities and character references, an optional declaration. Anything not well-formed throws, so
 * a body with a raw `<` or `&` in a value, a bad entity, an unclosed or mismatched tag, a character
 * XML forbids, or text after the root element is caught, as a real XML endpoint would refuse it.
 */

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's text content, entities decoded. */
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9._:-]*/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function parseXml(text: string): XmlElement {
  let input = text;
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at ${i}: ${why}`);
  };
  // XML 1.0 Char production: no C0 controls except tab, LF, CR.
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(input)) fail('a character XML does not allow');
  // What every XML parser does before anything else (XML 1.0 §2.11): line ends become LF.
  input = input.replace(/\r\n?/g, '\n');

  const skipSpace = () => {
    while (i < input.length && /\s/.test(input[i]!)) i++;
  };
  const decode = (text: string): string => {
    return text.replace(/&([^;]*);|&/g, (all, ref: string | undefined) => {
      if (ref === undefined) return fail('a bare "&"');
      if (ENTITIES[ref] !== undefined) return ENTITIES[ref]!;
      const num = /^#(\d+)$/.exec(ref) ?? /^#x([0-9A-Fa-f]+)$/.exec(ref);
      if (num) return String.fromCodePoint(parseInt(num[1]!, ref.startsWith('#x') ? 16 : 10));
      return fail(`unknown entity &${ref};`);
    });
  };

  if (input.startsWith('<?xml')) {
    const end = input.indexOf('?>');
    if (end < 0) fail('unterminated declaration');
    i = end + 2;
  }
  skipSpace();

  const element = (): XmlElement => {
    if (input[i] !== '<') fail('expected "<"');
    i++;
    const m = NAME.exec(input.slice(i));
    if (!m) return fail('expected an element name');
    const name = m[0];
    i += name.length;
    const attributes: Record<string, string> = {};
    for (;;) {
      skipSpace();
      if (input.startsWith('/>', i)) {
        i += 2;
        return { name, attributes, children: [], text: '' };
      }
      if (input[i] === '>') {
        i++;
        break;
      }
      const a = NAME.exec(input.slice(i));
      if (!a) fail('expected an attribute');
      i += a![0].length;
      skipSpace();
      if (input[i] !== '=') fail('expected "="');
      i++;
      skipSpace();
      const q = input[i];
      if (q !== '"' && q !== "'") fail('expected a quoted value');
      const end = input.indexOf(q!, i + 1);
      if (end < 0) fail('unterminated attribute');
      const raw = input.slice(i + 1, end);
      if (raw.includes('<')) fail('"<" in an attribute value');
      if (a![0] in attributes) fail(`attribute ${a![0]} twice`);
      // attribute-value normalisation (§3.3.3): literal white space becomes a space; references stay
      attributes[a![0]] = decode(raw.replace(/[\t\n]/g, ' '));
      i = end + 1;
    }
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      if (i >= input.length) fail(`<${name}> is not closed`);
      if (input.startsWith('</', i)) {
        i += 2;
        const close = NAME.exec(input.slice(i));
        if (!close || close[0] !== name) fail(`</${close?.[0] ?? ''}> closes <${name}>`);
        i += name.length;
        skipSpace();
        if (input[i] !== '>') fail('expected ">"');
        i++;
        return { name, attributes, children, text };
      }
      if (input[i] === '<') {
        children.push(element());
        continue;
      }
      const next = input.indexOf('<', i);
      const raw = input.slice(i, next < 0 ? input.length : next);
      if (raw.includes(']]>')) fail('"]]>" in text');
      text += decode(raw);
      i += raw.length;
    }
  };

  const root = element();
  skipSpace();
  if (i !== input.length) fail('content after the root element');
  return root;
}
