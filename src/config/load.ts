import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
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

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
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

export function parseConfigText<S extends z.ZodType>(text: string, file: string, schema: S, env: NodeJS.ProcessEnv): Loaded<z.output<S>> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const at = (offset: number | undefined) => {
    const pos = lines.linePos(offset ?? 0);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ file, ...at(e.pos[0]), field: '', message: e.message.split('\n')[0]! })));
  }

  const issues: ConfigIssue[] = [];
  const secrets: string[] = [];
  substituteEnv(doc.contents, [], env, secrets, (node, path, message) =>
    issues.push({ file, ...at(node.range?.[0]), field: fieldPath(path), message }),
  );
  if (issues.length) throw new ConfigError(issues);

  const result = schema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    for (const issue of result.error.issues) {
      // an unknown key is best shown where it is written, not where its map starts
      const at_ = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...issue.path, issue.keys[0]!] : issue.path;
      const node = nearestNode(doc, at_);
      issues.push({ file, ...at(node?.range?.[0]), field: fieldPath(issue.path), message: describe(issue) });
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

function substituteEnv(node: unknown, path: PropertyKey[], env: NodeJS.ProcessEnv, secrets: string[], report: Report): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      substituteEnv(pair.value, [...path, key], env, secrets, report);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => substituteEnv(item, [...path, i], env, secrets, report));
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    const secretField = SECRET_FIELD.test(String(path[path.length - 1] ?? ''));
    node.value = node.value.replace(ENV_REF, (_all, name: string, fallback: string | undefined) => {
      const value = env[name] ?? fallback;
      if (value === undefined) {
        report(node, path, `environment variable ${name} is not set`);
        return '';
      }
      if (secretField || SECRET_FIELD.test(name)) secrets.push(value);
      return value;
    });
  }
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

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.input === undefined) return `required field is missing (expected ${issue.expected})`;
  return issue.message;
}
