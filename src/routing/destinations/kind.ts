import { z } from 'zod';
import type { ContinueTarget } from '../../asterisk/ari.js';
import type { StepResult } from '../../calls/step.js';
import type { RouteAnswer } from '../answer.js';
import type { Run, Scope } from '../run.js';
import type { Destination, RouteConfig } from '../settings.js';

/**
 * What a destination kind is. Each module of destinations/ defines one, and the table in
 * index.ts lists them; the config, the decision and the router ask the table, so a new kind is
 * one module and one line of the table.
 *
 * `S` is the kind's own settings as the file holds them (see `settings`), handed to every
 * function below that takes `settings`.
 */
export interface DestinationKind<D extends Destination = Destination, S = undefined, A extends SettingsAt = SettingsAt> {
  /** the key an admin writes (`{ queue: vip }`), and what `Destination.kind` says */
  readonly kind: D['kind'];
  /** further keys an admin may write for it */
  readonly aliases?: readonly string[];
  /** How an admin writes it, from the value under its key: the destination, or what is wrong. `key` is the word they used. */
  read(value: unknown, key: string): D | string;

  /**
   * Its own section of the file, if it has one: `routing.<section>` (named entries an answer
   * may point at) or `destinations.<kind>` (how the dialplan reaches it). The schema gets what
   * it may hold of other kinds from `kit`.
   */
  readonly settings?: { readonly at: A; schema(kit: SchemaKit): z.ZodType<S> };
  /** Why a destination of this kind, written in the file, cannot be reached with these settings (a name with no entry). */
  check?(dest: D, settings: S): string | undefined;
  /** Checks what its settings name elsewhere in the file: a destination, a schedule, an SMS provider. */
  checkSettings?(settings: S, checks: SettingsChecks): void;

  /** How an API answer names it: the words its `result` may say (any case), and where the answer then sends the caller. */
  readonly answer?: { readonly results: readonly string[]; decide(answer: RouteAnswer, settings: S): Verdict };

  /** It can bring the caller back to a menu or an integration, so the loop guard counts it. */
  readonly loops?: boolean;
  /** It starts by collecting keys, so the answer's spoken data is its prompt (a key stops it) rather than played first. */
  readonly dataIsPrompt?: boolean;
  /** How the routing log and the dialplan name a destination; `kind:name` when left out. */
  describe?(dest: D): string;
  /** The dialplan place it is, when it is just one: a hand-over names it so the dialplan can take the route's fallback itself. */
  place?(dest: D, settings: S): ContinueTarget | undefined;
  /** Takes the caller there. */
  reach(dest: D, run: Run, scope: Scope, settings: S): Promise<StepResult>;
}

export type SettingsAt = `routing.${string}` | `destinations.${string}`;

/** Checks a kind's module against the contract, keeping its own types for the table. */
export function defineDestination<D extends Destination, S = undefined, A extends SettingsAt = SettingsAt>(
  kind: DestinationKind<D, S, A>,
): DestinationKind<D, S, A> {
  return kind;
}

/** The common shape: a kind and the name of one thing of that kind (a queue, a menu, a number). */
export interface Named<K extends string> extends Destination {
  readonly kind: K;
  readonly name: string;
}

/**
 * What a kind's settings may hold that only the whole table can read: a destination of any kind
 * (a menu's options) or a route (an integration). config.ts passes them in.
 */
export interface SchemaKit {
  readonly destination: z.ZodType<Destination>;
  readonly route: z.ZodType<RouteConfig>;
}

type Path = ReadonlyArray<string | number>;

/** The checks a kind's settings may ask for; a path is below the kind's section. */
export interface SettingsChecks {
  destination(dest: Destination | undefined, path: Path): void;
  schedule(name: string | undefined, path: Path): void;
  /** an integration's results, fallback and schedule */
  route(route: RouteConfig, path: Path): void;
  issue(path: Path, message: string): void;
  /** the file's sms: section, which an SMS destination's settings name a provider and template of */
  readonly sms: { readonly providers: Readonly<Record<string, unknown>>; readonly templates: Readonly<Record<string, string>> };
}

/** What an answer naming a kind means; without a destination the caller gets the route's fallback. */
export type Verdict = { outcome: 'routed'; destination: Destination; reason: string } | { outcome: 'unknown-destination'; reason: string };

export const routed = <D extends Destination>(destination: D, reason: string): Verdict => ({ outcome: 'routed', destination, reason });
export const nowhere = (reason: string): Verdict => ({ outcome: 'unknown-destination', reason });
export const withoutRedirect = (answer: RouteAnswer): Verdict => nowhere(`${answer.result} without a redirect`);

// ---------------------------------------------------------------------------------------------
// What kinds whose destinations name something have in common

/** `{ menu: main }`, `{ extension: 101 }`: a name, a number being read as one. */
export function readName<K extends string>(kind: K, value: unknown, key: string, example = 'support'): Named<K> | string {
  const name = typeof value === 'number' ? String(value) : value;
  if (typeof name !== 'string' || name === '') return `${key} takes a name, e.g. { ${key}: ${example} }`;
  return { kind, name };
}

const entryName = z.string().min(1).max(64);

/** A section of named entries, `routing.<section>: { <name>: <entry> }`, empty when left out. */
export const entries = <T extends z.ZodType>(entry: T) => z.record(entryName, entry).default({});

/** A destination naming an entry of its kind's section: a typo in the file is an error at start-up. */
export function checkEntry(dest: { kind: string; name?: string }, entries: Readonly<Record<string, unknown>>, at: string): string | undefined {
  if (dest.name === undefined || Object.hasOwn(entries, dest.name)) return undefined;
  const known = Object.keys(entries);
  return `no ${dest.kind} "${dest.name}" under ${at} (${known.length ? `known: ${known.join(', ')}` : 'none defined'})`;
}

/** An answer naming an entry of its kind's section: one the file does not have is an unknown destination. */
function decideEntry(kind: string, answer: RouteAnswer, entries: Readonly<Record<string, unknown>>, at: string): Verdict {
  const name = answer.redirect;
  if (name === undefined) return withoutRedirect(answer);
  if (!Object.hasOwn(entries, name)) return nowhere(`no ${kind} "${name.slice(0, 40)}" under ${at}`);
  return routed({ kind, name }, `${kind} ${name}`);
}

/**
 * What a kind whose destinations name an entry of its own section has in common (announcement,
 * menu, timecondition, sms): `{ <kind>: <name> }` in the file, `routing.<section>: { <name>: <entry> }`
 * with `entry` for each, an error at start-up for a name the section lacks, and an answer
 * naming it by `result: <kind>`, `redirect: <name>`.
 */
export function namedEntries<K extends string, Section extends string, E>(kind: K, section: Section, entry: (kit: SchemaKit) => z.ZodType<E>) {
  const at = `routing.${section}` as const;
  return {
    kind,
    read: (value: unknown, key: string) => readName(kind, value, key),
    settings: { at, schema: (kit: SchemaKit) => entries(entry(kit)) },
    check: (dest: Named<K>, all: Readonly<Record<string, E>>) => checkEntry(dest, all, at),
    answer: { results: [kind], decide: (answer: RouteAnswer, all: Readonly<Record<string, E>>) => decideEntry(kind, answer, all, at) },
  };
}

