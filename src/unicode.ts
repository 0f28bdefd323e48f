export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A lone surrogate (half of an emoji cut by a caller name's length limit, or a broken API answer)
 * becomes U+FFFD: UTF-8 cannot carry it, and encodeURIComponent throws "URI malformed" on it.
 */
export function wellFormed(v: string): string {
  return v.replace(LONE_SURROGATE, '\uFFFD');
}
