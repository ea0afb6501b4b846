// Bounded parallelism for per-object API calls: enough to hide round trips, few enough not to
// trip the API server's priority and fairness limits for one client.
export const DEFAULT_CONCURRENCY = 8;

/** Runs fn over items with at most `limit` in flight; results keep the order of items. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(limit, 1), items.length) }, worker));
  return results;
}
