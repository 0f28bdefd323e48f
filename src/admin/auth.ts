import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Who is asking the admin listener, and whether they may. Tokens come from the config (read from
 * the environment); a request carries one as `Authorization: Bearer <token>` or, from the console,
 * as the HttpOnly `ca_session` cookie that `POST /login` sets.
 *
 * Cross-site requests: a cookie travels with any request a browser makes, so a state-changing
 * request (POST) authenticated by the cookie must also carry `X-CSRF-Token`, a value derived from
 * the token with a per-process key that only a page of this origin can read (from /login or
 * /session), and an `Origin`, when sent, must name the host asked. A Bearer header is never sent
 * by a browser on its own, so it needs neither.
 *
 * DNS rebinding: a name that resolves to 127.0.0.1 would make a browser treat the admin listener
 * as that name's site; the Host header is therefore checked against an allow-list.
 */

export const ROLES = ['viewer', 'admin'] as const;
/** viewer: numbers masked, read only; admin: whole numbers, re-send */
export type Role = (typeof ROLES)[number];

export interface Caller {
  /** the token's name, or `local` when no token is configured (loopback only) */
  name: string;
  role: Role;
}

export interface TokenEntry {
  name: string;
  role: Role;
  token: string;
}

export const SESSION_COOKIE = 'ca_session';
export const CSRF_HEADER = 'x-csrf-token';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class AdminAuth {
  private readonly tokens: Array<{ digest: Buffer; name: string; role: Role }>;
  private readonly key = randomBytes(32);
  private readonly hosts: Set<string>;

  constructor(tokens: readonly TokenEntry[], allowedHosts: readonly string[]) {
    this.tokens = tokens.map((t) => ({ digest: digest(t.token), name: t.name, role: t.role }));
    this.hosts = new Set(['localhost', '127.0.0.1', '[::1]', ...allowedHosts.map(normaliseHost)]);
  }

  /** With no token configured the admin paths are open (the config allows that on loopback only). */
  get open(): boolean {
    return this.tokens.length === 0;
  }

  /** Host header (without its port) is one this listener answers to. */
  hostAllowed(hostHeader: string | undefined): boolean {
    if (!hostHeader) return false;
    return this.hosts.has(normaliseHost(hostHeader));
  }

  /** The caller a token belongs to; compared in constant time. */
  caller(token: string | undefined): Caller | undefined {
    if (this.open) return { name: 'local', role: 'admin' };
    if (!token) return undefined;
    const d = digest(token);
    let found: Caller | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, d)) found = { name: t.name, role: t.role };
    return found;
  }

  /** The request's token and how it came. */
  tokenOf(req: IncomingMessage): { token?: string; via: 'bearer' | 'cookie' | 'none' } {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return { token: auth.slice(7).trim(), via: 'bearer' };
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie) return { token: cookie, via: 'cookie' };
    return { via: 'none' };
  }

  csrfFor(token: string): string {
    return createHmac('sha256', this.key).update(token).digest('base64url');
  }

  /** Undefined when a state-changing request may go on, else why not. */
  crossSiteProblem(req: IncomingMessage, token: string | undefined, via: 'bearer' | 'cookie' | 'none'): string | undefined {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (!host || host.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) {
        return `Origin ${origin} is not this site`;
      }
    }
    if (via !== 'cookie') return undefined;
    const sent = req.headers[CSRF_HEADER];
    const want = this.csrfFor(token ?? '');
    if (typeof sent !== 'string' || sent.length !== want.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(want))) {
      return `a request signed in by cookie needs the ${CSRF_HEADER} header`;
    }
    return undefined;
  }
}

/** `Example.COM:8091` → `example.com`; `[::1]:8091` → `[::1]`. */
export function normaliseHost(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  if ((h.match(/:/g) ?? []).length > 1) return `[${h}]`; // a bare IPv6 address
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
