import { z } from 'zod';
import { ROLES } from '../admin/auth.js';
import { httpUrl } from '../config/types.js';

/**
 * The `http:` section: where the service listens, and who may ask it what.
 *
 * Two listeners. **media** serves only `/media/…` (the TTS audio Asterisk fetches; it may bind a
 * public address). **admin** serves the API, the console and `/metrics` (127.0.0.1 by default).
 * Either may be left out: the other listener then serves its paths too. The older form
 * `http: { host, port, publicUrl }` is one listener serving both, as before.
 *
 * Tokens (from the environment) each have a role: `viewer` sees phone numbers masked as in the
 * logs, `admin` sees them whole and may re-send. With no token configured the admin paths are
 * open, which is allowed only while the listener that serves them is on a loopback address.
 */

const tls = z
  .object({
    cert: z.string().min(1).describe('PEM certificate chain file'),
    key: z.string().min(1).describe('PEM private key file'),
  })
  .strict()
  .describe('serve HTTPS on this listener');

const mediaListener = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8090),
    publicUrl: httpUrl.optional().describe('how Asterisk reaches this listener (TTS media); defaults to http://host:port'),
    tls: tls.optional(),
  })
  .strict();

const adminListener = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8091),
    tls: tls.optional(),
  })
  .strict();


const token = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.@-]+$/, 'a name is letters, digits and . _ @ -').describe('who holds it; written to the audit log'),
    role: z.enum(ROLES),
    token: z.string().min(16, 'a token is at least 16 characters (e.g. openssl rand -hex 24)').describe('write it as ${ENV_VAR}'),
  })
  .strict();

export const httpSchema = z
  .object({
    host: z.string().min(1).optional().describe('one listener for media and admin (the older form; see media/admin)'),
    port: z.number().int().min(0).max(65535).optional(),
    publicUrl: httpUrl.optional(),
    tls: tls.optional(),
    media: mediaListener.optional(),
    admin: adminListener.optional(),
    tokens: z.array(token).default([]),
    allowedHosts: z
      .array(z.string().min(1))
      .default([])
      .describe('Host header names the admin listener answers besides localhost, 127.0.0.1, [::1] and its own address (DNS rebinding)'),
  })
  .strict()
  .superRefine((h, ctx) => {
    const legacy = (['host', 'port', 'publicUrl', 'tls'] as const).filter((k) => h[k] !== undefined);
    if (legacy.length && (h.media || h.admin)) {
      ctx.addIssue({ code: 'custom', path: [legacy[0]!], message: `http.${legacy[0]} is the one-listener form; with http.media / http.admin, write it inside them` });
      return;
    }
    const names = new Set<string>();
    h.tokens.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tokens', i, 'name'], message: `token name "${t.name}" appears twice` });
      names.add(t.name);
    });
    if (h.tokens.length) return;
    const admin = listenersOf(h).find((l) => l.admin)!;
    if (!isLoopback(admin.host)) {
      const path = h.admin ? ['admin', 'host'] : h.media ? ['media', 'host'] : ['host'];
      ctx.addIssue({
        code: 'custom',
        path,
        message: `the admin API would listen on ${admin.host} with no token: add http.tokens (role viewer or admin, token from the environment), or serve the admin paths on 127.0.0.1`,
      });
    }
  });

export type HttpConfig = z.output<typeof httpSchema>;

export const consoleSchema = z
  .object({
    publicUrl: httpUrl.optional().describe("the console's address as operators reach it; Salesforce Task comments link to <publicUrl>/calls/<callId>"),
  })
  .strict()
  .default({});

export interface Listener {
  name: 'media' | 'admin' | 'media+admin';
  host: string;
  port: number;
  publicUrl?: string;
  tls?: { cert: string; key: string };
  media: boolean;
  admin: boolean;
}

/** The listeners the section asks for: one or two, together serving media and admin. */
export function listenersOf(h: HttpConfig): Listener[] {
  if (!h.media && !h.admin) {
    return [{ name: 'media+admin', host: h.host ?? '127.0.0.1', port: h.port ?? 8090, publicUrl: h.publicUrl, tls: h.tls, media: true, admin: true }];
  }
  if (h.media && h.admin) {
    return [
      { name: 'media', ...h.media, media: true, admin: false },
      { name: 'admin', ...h.admin, media: false, admin: true },
    ];
  }
  if (h.media) return [{ name: 'media+admin', ...h.media, media: true, admin: true }];
  return [{ name: 'media+admin', ...h.admin!, media: true, admin: true }];
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}
