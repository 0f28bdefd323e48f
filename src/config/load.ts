import { readFileSync } from 'node:fs';
import { isAlias, isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';

/** One problem in a config file, located the way an editor wants it. */
export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** dotted path with [index] for lists, e.g. stages.queue-exit[0].sms.provider */
  field: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.field || '(top level)'}: ${i.message}`;
}

export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  // a path this long comes from a hostile file: its start is enough to find the place
  if (path.length > 16) return `${fieldPath(path.slice(0, 16))}…`;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out;
}

export interface Loaded<T> {
  value: T;
  /** Values read from the environment for secret-looking fields: the logger scrubs them. */
  secrets: string[];
  /** `file:line:col` of a field (or of its nearest written ancestor), for errors found after loading */
  place(path: readonly PropertyKey[]): string;
}

const SECRET_FIELD = /pass|secret|token|key|auth|sid|credential/i;

/**
 * Reads a YAML file, substitutes `${NAME}` (and `${NAME:-default}`) from the environment, and
 * validates it with a zod schema. Every problem is reported at once, each with file, line and
 * field, because an admin fixing a config wants the whole list, not one error per restart.
 */
export function loadConfigFile<S extends z.ZodType>(file: string, schema: S, env: NodeJS.ProcessEnv = process.env): Loaded<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, column: 0, field: '', message: `cannot read: ${(e as Error).message}` }]);
  }
  return parseConfigText(text, file, schema, env);
}

/** Deeper than this, a file is not a config an admin wrote (and deep enough recursion overflows the stack). */
export const MAX_DEPTH = 64;
/** Alias expansions allowed in one file: a few for shared blocks, never an "alias bomb". */
export const MAX_ALIAS_COUNT = 100;

export function parseConfigText<S extends z.ZodType>(text: string, file: string, schema: S, env: NodeJS.ProcessEnv): Loaded<z.output<S>> {
  try {
    return parse(text, file, schema, env);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    // Whatever a broken file makes a library throw is still a config error at a place, never a stack trace.
    const message = e instanceof RangeError && /call stack/i.test(e.message) ? `nested deeper than ${MAX_DEPTH} levels` : `cannot read: ${(e as Error).message ?? String(e)}`;
    throw new ConfigError([{ file, line: 1, column: 1, field: '', message }]);
  }
}

function parse<S extends z.ZodType>(text: string, file: string, schema: S, env: NodeJS.ProcessEnv): Loaded<z.output<S>> {
  const lines = new LineCounter();
  const doc = parseDocument(shieldRefs(text), { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => {
    const pos = lines.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length) {
    // a file nested so deep that the parser ran out of stack reports that once, not at every level
    const deep = doc.errors.find((e) => /call stack/i.test(e.message));
    throw new ConfigError(
      (deep ? [deep] : doc.errors).map((e) => ({ file, ...at(e.pos[0]), field: fieldPath(pathAt(doc.contents, e.pos[0])), message: yamlMessage(e.message) })),
    );
  }
  const tooDeep = deeperThan(doc.contents, MAX_DEPTH);
  if (tooDeep) throw new ConfigError([{ file, ...at(tooDeep.node.range?.[0]), field: fieldPath(tooDeep.path), message: `nested deeper than ${MAX_DEPTH} levels` }]);

  const issues: ConfigIssue[] = [];
  const secrets: string[] = [];
  const substituted = new Map<string, string>();
  substituteEnv(
    doc.contents,
    [],
    env,
    secrets,
    (node, path, message) => issues.push({ file, ...at(node.range?.[0]), field: fieldPath(path), message }),
    (path, source) => substituted.set(fieldPath(path), source),
  );
  if (issues.length) throw new ConfigError(issues);

  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    // yaml's "Excessive alias count indicates a resource exhaustion attack": an alias bomb
    const alias = firstAlias(doc.contents);
    throw new ConfigError([
      {
        file,
        ...at(alias?.node.range?.[0]),
        field: fieldPath(alias?.path ?? []),
        message: `YAML aliases (*name) expand to too many nodes (more than ${MAX_ALIAS_COUNT} per alias): write the values out, or use fewer nested aliases`,
      },
    ]);
  }
  let result = schema.safeParse(input);
  // The environment only holds strings, so a value that came from ${VAR} takes the type its field
  // wants. Driven by the schema's own complaints, so no field list has to be kept in step with it;
  // a coercion can uncover the next complaint (a union, a later refinement), hence a few rounds.
  const unfit = new Map<string, ConfigIssue>();
  for (let round = 0; round < 8 && !result.success && substituted.size; round++) {
    let changed = false;
    for (const issue of result.error.issues) {
      const key = fieldPath(issue.path);
      const source = substituted.get(key);
      if (source === undefined || unfit.has(key)) continue;
      const wanted = wantedTypes(issue);
      if (!wanted.length) continue;
      const current = getIn(input, issue.path);
      if (typeof current !== 'string') continue;
      const coerced = coerce(current, wanted);
      if (coerced === undefined) {
        const node = nearestNode(doc, issue.path);
        unfit.set(key, { file, ...at(node?.range?.[0]), field: key, message: `expected ${wanted.map(article).join(' or ')}, got ${JSON.stringify(current)} from ${source}` });
        continue;
      }
      setIn(input, issue.path, coerced);
      changed = true;
    }
    if (!changed) break;
    result = schema.safeParse(input);
  }
  if (!result.success || unfit.size) {
    issues.push(...unfit.values());
    for (const issue of result.success ? [] : result.error.issues) {
      if (unfit.has(fieldPath(issue.path))) continue;
      // an unknown key is best shown where it is written, not where its map starts
      const at_ = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...issue.path, issue.keys[0]!] : issue.path;
      const node = nearestNode(doc, at_);
      issues.push({ file, ...at(node?.range?.[0]), field: fieldPath(issue.path), message: describe(issue, getIn(input, issue.path)) });
    }
    throw new ConfigError(issues);
  }
  const place = (path: readonly PropertyKey[]) => {
    const { line, column } = at(nearestNode(doc, path)?.range?.[0]);
    return `${file}:${line}:${column}`;
  };
  return { value: result.data, secrets, place };
}

type Report = (node: Node, path: PropertyKey[], message: string) => void;

/** yaml's first line, with the words an admin knows for what a key means. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0]!;
  if (/Map keys must be unique/.test(first)) return 'this key appears twice in the same map (YAML keys must be unique)';
  if (/call stack/i.test(first)) return `nested deeper than ${MAX_DEPTH} levels`;
  return first;
}

type Located = { node: Node; path: PropertyKey[] };

/** The field path of the node that holds `offset` (a key's own path when the offset is on the key). */
function pathAt(root: unknown, offset: number): PropertyKey[] {
  const path: PropertyKey[] = [];
  let node = root;
  for (let depth = 0; depth < MAX_DEPTH * 2; depth++) {
    const inside = (n: unknown) => isNodeWithRange(n) && n.range![0] <= offset && offset < n.range![2];
    let next: unknown;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (inside(pair.key)) return [...path, key];
        if (inside(pair.value)) {
          path.push(key);
          next = pair.value;
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (next === undefined && inside(item)) {
          path.push(i);
          next = item;
        }
      });
    }
    if (next === undefined) return path;
    node = next;
  }
  return path;
}

function isNodeWithRange(n: unknown): n is Node {
  return typeof n === 'object' && n !== null && 'range' in n && Array.isArray((n as Node).range);
}

/** Walks without recursion (a deep file must not overflow the stack here either). */
function* walk(root: unknown): Generator<Located & { depth: number }> {
  const stack: Array<Located & { depth: number }> = isNodeWithRange(root) ? [{ node: root, path: [], depth: 0 }] : [];
  while (stack.length) {
    const cur = stack.pop()!;
    yield cur;
    if (isMap(cur.node)) {
      for (const pair of cur.node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (isNodeWithRange(pair.value)) stack.push({ node: pair.value, path: [...cur.path, key], depth: cur.depth + 1 });
      }
    } else if (isSeq(cur.node)) {
      cur.node.items.forEach((item, i) => {
        if (isNodeWithRange(item)) stack.push({ node: item, path: [...cur.path, i], depth: cur.depth + 1 });
      });
    }
  }
}

function deeperThan(root: unknown, max: number): Located | undefined {
  for (const n of walk(root)) if (n.depth > max && isCollection(n.node)) return n;
  return undefined;
}

function firstAlias(root: unknown): Located | undefined {
  let first: Located | undefined;
  for (const n of walk(root)) if (isAlias(n.node) && (!first || n.node.range![0] < first.node.range![0])) first = n;
  return first;
}

// Private-use stand-ins for the braces of ${...}: in a YAML flow map (`http: { port: ${PORT} }`) a
// bare `{` or `}` opens or closes the map, so the reference is a syntax error before it can be
// substituted. One UTF-16 unit each, so every line:column the parser reports stays true.
const OPEN = '\uE000';
const CLOSE = '\uE001';
const SHIELD = /\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^}\n]*)?)\}/g;
const SHIELDED = new RegExp(`\\$${OPEN}([A-Za-z_][A-Za-z0-9_]*)(?::-([^${CLOSE}]*))?${CLOSE}`, 'g');

function shieldRefs(text: string): string {
  return text.replace(SHIELD, (_all, inner: string) => `$${OPEN}${inner}${CLOSE}`);
}

function unshield(text: string): string {
  return text.replaceAll(OPEN, '{').replaceAll(CLOSE, '}');
}

function substituteEnv(
  node: unknown,
  path: PropertyKey[],
  env: NodeJS.ProcessEnv,
  secrets: string[],
  report: Report,
  substituted: (path: PropertyKey[], source: string) => void,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      // a key is never substituted, but it must read as written
      if (isScalar(pair.key) && typeof pair.key.value === 'string') pair.key.value = unshield(pair.key.value);
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      substituteEnv(pair.value, [...path, key], env, secrets, report, substituted);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => substituteEnv(item, [...path, i], env, secrets, report, substituted));
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes(`$${OPEN}`)) {
    const secretField = SECRET_FIELD.test(String(path[path.length - 1] ?? ''));
    substituted(path, unshield(node.value));
    node.value = node.value.replace(SHIELDED, (_all, name: string, fallback: string | undefined) => {
      const value = env[name] ?? fallback;
      if (value === undefined) {
        report(node, path, `environment variable ${name} is not set`);
        return '';
      }
      if (secretField || SECRET_FIELD.test(name)) secrets.push(value);
      return value;
    });
    node.value = unshield(node.value as string);
  } else if (isScalar(node) && typeof node.value === 'string') {
    node.value = unshield(node.value);
  }
}

type Wanted = 'number' | 'boolean';

/** The scalar types a failed field would take; from a union, those of its branches. */
function wantedTypes(issue: z.core.$ZodIssue): Wanted[] {
  const out = new Set<Wanted>();
  // a branch's issue about the value itself has an empty path; a longer one is about something inside
  const visit = (i: z.core.$ZodIssue, top: boolean) => {
    if (!top && i.path.length) return;
    if (i.code === 'invalid_type' && (i.expected === 'number' || i.expected === 'boolean')) out.add(i.expected as Wanted);
    if (i.code === 'invalid_union') for (const branch of i.errors) for (const b of branch) visit(b, false);
  };
  visit(issue, true);
  return [...out];
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

function coerce(text: string, wanted: Wanted[]): number | boolean | undefined {
  const t = text.trim();
  if (wanted.includes('number') && t !== '' && /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (wanted.includes('boolean')) {
    if (TRUE.has(t.toLowerCase())) return true;
    if (FALSE.has(t.toLowerCase())) return false;
  }
  return undefined;
}

function article(t: Wanted): string {
  return t === 'number' ? 'a number' : 'a boolean (true or false)';
}

function getIn(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function setIn(root: unknown, path: readonly PropertyKey[], value: unknown): void {
  const parent = getIn(root, path.slice(0, -1));
  if (parent !== null && typeof parent === 'object') (parent as Record<PropertyKey, unknown>)[path[path.length - 1]!] = value;
}

/** The node at `path`, or the deepest ancestor that exists (a missing key is reported at its parent). */
function nearestNode(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as Node | undefined;
    if (node && typeof node === 'object' && 'range' in node) {
      return node;
    }
  }
  return undefined;
}

// zod 4 leaves the input out of its issues, so the value is looked up: a field written with the
// wrong type (port: "8090") is not a missing one
function describe(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && value === undefined) return `required field is missing (expected ${typeWord(issue.expected)})`;
  if (issue.code === 'invalid_type') return `expected ${typeWord(issue.expected)}, got ${valueWord(value)}`;
  if (issue.code === 'invalid_union' && value !== undefined) {
    // every branch refused the value's type: say which types the field takes
    const expected = issue.errors.flatMap((branch) => (branch.length === 1 && branch[0]!.code === 'invalid_type' && !branch[0]!.path.length ? [branch[0]!.expected] : []));
    if (expected.length === issue.errors.length) return `expected ${[...new Set(expected)].map(typeWord).join(' or ')}, got ${valueWord(value)}`;
  }
  return issue.message;
}

function typeWord(expected: string): string {
  const words: Record<string, string> = { object: 'a map', record: 'a map', array: 'a list', int: 'a whole number', number: 'a number', string: 'a string', boolean: 'a boolean (true or false)' };
  return words[expected] ?? expected;
}

/** "a string ("eighty")", "a number too large (Infinity)", "a list", "nothing (null)". */
function valueWord(value: unknown): string {
  if (value === null) return 'an empty value (null)';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
      if (!Number.isFinite(value)) return `a number out of range (${value})`;
      return Number.isInteger(value) ? `a number (${value})` : `a fraction (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    case 'object':
      return 'a map';
    default:
      return typeof value;
  }
}
