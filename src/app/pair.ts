import { hostname } from 'node:os';
import { z } from 'zod';
import type { AriChannel } from '../asterisk/ari-events.js';
import type { Logger } from '../log.js';
import { statement, postgresDdl, applyMigrations } from '../store/port.js';
import type { Migration, Store } from '../store/port.js';
import { timeout } from '../config/types.js';

/**
 * Two (or more) instances of the service on one store (docs/pair.md). Each has its own ARI
 * application; the shipped dialplan tries them in turn ([call-actions-stasis]), so a new call
 * reaches whichever is connected. What that cannot cover is what an instance leaves behind when it
 * dies: callers waiting in its Stasis application, which Asterisk keeps there with nobody to
 * serve them, and queued work (SMS, hook runs, Salesforce activities) that no other worker was
 * told about, because an idle worker sleeps until its own next row is due.
 *
 * So each instance writes a heartbeat row in the shared store, and watches its peers' rows. When a
 * peer stops (its row says so) or goes silent for `deadAfter`, this instance wakes its workers
 * (they read the store again and take over the peer's rows, a running lease first running out) and
 * hands every caller left in the peer's application back to the dialplan with
 * CALL_ACTIONS_REFUSED=peer-lost, so that [call-actions-stasis] tries the next application: this one.
 * A peer that restarts within `deadAfter` adopts its own callers (src/asterisk/ari.ts reconcile).
 */

export const pairSchema = z
  .object({
    peers: z
      .array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'an ARI application name'))
      .max(8)
      .default([])
      .describe("the other instances' asterisk.ari.app names; they must share this store"),
    heartbeat: timeout.default(2_000).describe('how often this instance writes that it is alive'),
    deadAfter: timeout.default(6_000).describe('a peer silent this long is taken over'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.deadAfter < 2 * v.heartbeat) ctx.addIssue({ code: 'custom', path: ['deadAfter'], message: 'deadAfter must be at least twice heartbeat, or a busy peer is taken for dead' });
  });
export type PairConfig = z.output<typeof pairSchema>;

export const pairMigrations: readonly Migration[] = [
  {
    id: 'pair/001-instances',
    get postgres() {
      return postgresDdl(String(pairMigrations[0]!.up));
    },
    up: `
      CREATE TABLE instances (
        app TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        stopped_at INTEGER
      );
    `,
  },
];

/** What the watch needs of ARI: the channels, and a way to send one back to the dialplan. */
export interface PairAri {
  readonly ready: boolean;
  listChannels(): Promise<AriChannel[]>;
  handBack(channelId: string, vars: Record<string, string>): Promise<void>;
}

export interface PairOptions {
  config: PairConfig;
  /** This instance's ARI application. */
  app: string;
  store: Store;
  ari: PairAri;
  /** Wakes every durable worker: a peer's rows may be ours to deliver now. */
  wake(): void;
  log: Logger;
  now?: () => number;
}

export interface PeerState {
  alive: boolean;
  /** ms since its last heartbeat; undefined when it never wrote one */
  silentMs?: number;
  stopped: boolean;
}

export const PEER_LOST = 'peer-lost';

export class PairWatch {
  private timer?: NodeJS.Timeout;
  private readonly alive = new Map<string, boolean>();
  private readonly now: () => number;
  private rescuing = false;
  private readonly sql;

  constructor(private readonly opts: PairOptions) {
    this.now = opts.now ?? Date.now;
    applyMigrations(opts.store, pairMigrations);
    this.sql = {
      beat: statement<[string, string, number, number, number]>(
        `INSERT INTO instances (app, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (app) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
           seen_at = excluded.seen_at, stopped_at = NULL`,
      ),
      seen: statement<[number, string]>('UPDATE instances SET seen_at = ? WHERE app = ?'),
      stopped: statement<[number, string]>('UPDATE instances SET stopped_at = ? WHERE app = ?'),
      peer: statement<[string], { seen_at: number; stopped_at: number | null }>('SELECT seen_at, stopped_at FROM instances WHERE app = ?'),
    };
  }

  async start(): Promise<void> {
    if (this.opts.config.peers.length === 0) return;
    const now = this.now();
    await this.sql.beat.run(this.opts.store, this.opts.app, hostname(), process.pid, now, now);
    this.timer = setInterval(() => void this.tick(), this.opts.config.heartbeat);
    this.timer.unref();
    await this.tick();
  }

  /** Says this instance has stopped, so its peers take over at once rather than after deadAfter. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      await this.sql.stopped.run(this.opts.store, this.now(), this.opts.app);
    } catch (e) {
      this.opts.log.warn({ err: e }, 'pair: could not record this instance as stopped; its peers take over after deadAfter');
    }
  }

  async peers(): Promise<Record<string, PeerState>> {
    const out: Record<string, PeerState> = {};
    for (const app of this.opts.config.peers) out[app] = await this.state(app);
    return out;
  }

  private async state(app: string): Promise<PeerState> {
    const row = await this.sql.peer.get(this.opts.store, app);
    if (!row) return { alive: false, stopped: false };
    const silentMs = this.now() - row.seen_at;
    const stopped = row.stopped_at !== null;
    return { alive: !stopped && silentMs < this.opts.config.deadAfter, silentMs, stopped };
  }

  /** Every heartbeat: says this instance is alive, and takes over a peer that is not. */
  async tick(): Promise<void> {
    try {
      await this.sql.seen.run(this.opts.store, this.now(), this.opts.app);
    } catch (e) {
      this.opts.log.warn({ err: e }, 'pair: heartbeat not written');
      return;
    }
    const lost: string[] = [];
    for (const app of this.opts.config.peers) {
      let s: PeerState;
      try {
        s = await this.state(app);
      } catch (e) {
        this.opts.log.warn({ err: e, peer: app }, 'pair: peer state not read');
        return;
      }
      const was = this.alive.get(app);
      this.alive.set(app, s.alive);
      if (s.alive) continue;
      if (was !== false) {
        this.opts.log.warn({ peer: app, silentMs: s.silentMs, stopped: s.stopped }, s.stopped ? 'pair: peer stopped; taking over its work' : 'pair: peer lost; taking over its work');
        this.opts.wake();
      }
      lost.push(app);
    }
    // every tick while a peer is gone: its callers may be reachable only once our ARI is back
    if (lost.length && this.opts.ari.ready && !this.rescuing) void this.rescue(lost);
  }

  /** Hands back to the dialplan every caller waiting in a lost peer's Stasis application. */
  private async rescue(peers: readonly string[]): Promise<void> {
    this.rescuing = true;
    try {
      const channels = await this.opts.ari.listChannels();
      for (const c of channels) {
        const app = c.dialplan?.app_name === 'Stasis' ? (c.dialplan.app_data ?? '').split(',')[0] : undefined;
        if (!app || !peers.includes(app)) continue;
        try {
          await this.opts.ari.handBack(c.id, { CALL_ACTIONS_REFUSED: PEER_LOST });
          this.opts.log.info({ channel: c.id, peer: app }, 'pair: a caller the lost peer left in Stasis was handed back to the dialplan');
        } catch (e) {
          this.opts.log.warn({ err: (e as Error).message, channel: c.id, peer: app }, 'pair: could not hand back a caller of the lost peer');
        }
      }
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'pair: cannot list channels');
    } finally {
      this.rescuing = false;
    }
  }
}
