// Shared by the SMS outbox and the hook worker, so both histories bound and cut answers alike.

/** Kept per attempt; enough to read a provider's error answer without storing whole pages. */
export const BODY_EXCERPT_BYTES = 2048;

/** At most BODY_EXCERPT_BYTES of UTF-8, cut on a character boundary. */
export function excerpt(text: string, maxBytes: number = BODY_EXCERPT_BYTES): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
