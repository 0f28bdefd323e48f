import { readdirSync, statSync } from 'node:fs';
import { unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/**
 * The TTS cache's size cap (`tts.cacheSize`): the files' sizes and last use are kept in memory
 * (read from the folder at start, last use = modification time), and when a new file takes the
 * total over the cap, the least recently used files are deleted until it fits again. A use also
 * moves the file's modification time, so the order survives a restart.
 *
 * A file deleted here while Asterisk still fetches it is only a cache miss: the next speak of the
 * same text synthesises it again.
 */
export class CacheLimit {
  private readonly files = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly log?: Logger,
  ) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      /* no folder yet */
    }
    const found = names
      .filter((n) => /^[0-9a-f]{32}\.wav$/.test(n))
      .flatMap((n) => {
        try {
          const s = statSync(join(dir, n));
          return [{ id: n.slice(0, 32), bytes: s.size, used: s.mtimeMs }];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.used - b.used);
    // a Map iterates in insertion order: oldest use first
    for (const f of found) this.add(f.id, f.bytes);
  }

  get bytes(): number {
    return this.total;
  }

  /** A file was served or written: it becomes the most recently used; then the cap is enforced. */
  used(id: string, bytes: number): void {
    const known = this.files.has(id);
    this.remove(id);
    this.add(id, bytes);
    if (known) {
      const now = new Date();
      void utimes(join(this.dir, `${id}.wav`), now, now).catch(() => {});
    }
    this.enforce(id);
  }

  private add(id: string, bytes: number): void {
    this.files.set(id, bytes);
    this.total += bytes;
  }

  private remove(id: string): void {
    const b = this.files.get(id);
    if (b === undefined) return;
    this.files.delete(id);
    this.total -= b;
  }

  private enforce(keep: string): void {
    const evicted: string[] = [];
    for (const [id] of this.files) {
      if (this.total <= this.maxBytes) break;
      if (id === keep) continue;
      this.remove(id);
      evicted.push(id);
      void unlink(join(this.dir, `${id}.wav`)).catch(() => {});
    }
    if (evicted.length) this.log?.info({ evicted: evicted.length, bytes: this.total, maxBytes: this.maxBytes }, 'tts cache over its size: least recently used files deleted');
  }
}
