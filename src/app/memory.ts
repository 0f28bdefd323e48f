import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import type { PageCache } from '../store/port.js';

/**
 * Where this process's resident memory goes, measured, for /stats (the bench's memory run reads
 * it): the kernel's split of RSS, V8's heap space by space, what is bound to JS objects outside
 * the heap, SQLite's page cache (its bound: see PageCache), and the anonymous memory none of
 * these explains (the allocator's free lists, Node's and the libraries' own buffers).
 */
export interface MemoryBreakdown {
  /** Linux (/proc/self/status): anonymous memory, file-backed pages (node's and the libraries' code and data, mapped files), shared memory */
  rss?: { totalBytes: number; anonBytes: number; fileBytes: number; shmemBytes: number };
  /** V8's heap by space: resident (committed and touched) and used by objects. `new` is where objects are born (two semi-spaces), `old` what survived, `code` compiled code */
  heap: Record<'new' | 'old' | 'code' | 'other', HeapSpace>;
  /** V8's own malloc (its compiler, parser), not JS objects */
  v8MallocBytes: number;
  /** C++ memory bound to JS objects (Buffers, sockets), of which ArrayBuffers */
  externalBytes: number;
  arrayBuffersBytes: number;
  sqlitePageCache?: PageCache;
  /** anonymous RSS less the heap, V8's malloc, external memory and SQLite's page cache bound */
  otherAnonBytes?: number;
}

export interface HeapSpace {
  residentBytes: number;
  usedBytes: number;
}

const SPACES: Record<string, keyof MemoryBreakdown['heap']> = {
  new_space: 'new',
  new_large_object_space: 'new',
  old_space: 'old',
  large_object_space: 'old',
  map_space: 'old',
  code_space: 'code',
  code_large_object_space: 'code',
};

export function memoryBreakdown(pageCache?: () => PageCache | undefined): MemoryBreakdown {
  const heap: MemoryBreakdown['heap'] = { new: space(), old: space(), code: space(), other: space() };
  for (const s of v8.getHeapSpaceStatistics()) {
    const h = heap[SPACES[s.space_name] ?? 'other'];
    h.residentBytes += s.physical_space_size;
    h.usedBytes += s.space_used_size;
  }
  const { external, arrayBuffers } = process.memoryUsage();
  const v8MallocBytes = v8.getHeapStatistics().malloced_memory;
  const out: MemoryBreakdown = { heap, v8MallocBytes, externalBytes: external, arrayBuffersBytes: arrayBuffers };
  const cache = pageCache?.();
  if (cache) out.sqlitePageCache = cache;
  const rss = kernelRss();
  if (rss) {
    out.rss = rss;
    const heapResident = Object.values(heap).reduce((n, h) => n + h.residentBytes, 0);
    out.otherAnonBytes = Math.max(0, rss.anonBytes - heapResident - v8MallocBytes - external - (cache?.boundBytes ?? 0));
  }
  return out;
}

function space(): HeapSpace {
  return { residentBytes: 0, usedBytes: 0 };
}

function kernelRss(): MemoryBreakdown['rss'] {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const r = { totalBytes: kib('VmRSS'), anonBytes: kib('RssAnon'), fileBytes: kib('RssFile'), shmemBytes: kib('RssShmem') };
  return Object.values(r).every(Number.isFinite) ? r : undefined;
}
