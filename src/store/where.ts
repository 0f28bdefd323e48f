/**
 * The WHERE clause of the log and history queries: exact matches, one-of lists and a
 * [since, until) window on created_at. An absent value or an empty list filters nothing, so
 * a caller that means "none of them" must answer that itself.
 *
 * Column names are SQL, so they come from code, never from a request; the values are bound.
 */
export function whereClause(
  equal: Record<string, string | undefined>,
  oneOf: Record<string, readonly string[] | undefined>,
  window: { since?: number; until?: number },
): { clause: string; args: Array<string | number> } {
  const where: string[] = [];
  const args: Array<string | number> = [];
  for (const [column, v] of Object.entries(equal)) if (v !== undefined) (where.push(`${column} = ?`), args.push(v));
  for (const [column, vs] of Object.entries(oneOf)) if (vs?.length) (where.push(`${column} IN (${vs.map(() => '?').join(', ')})`), args.push(...vs));
  if (window.since !== undefined) (where.push('created_at >= ?'), args.push(window.since));
  if (window.until !== undefined) (where.push('created_at < ?'), args.push(window.until));
  return { clause: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}
