/**
 * Runs `call` once (the one-off setup: pipelines, JIT tiers, first
 * allocations, however long that takes), then again for at least `ms`
 * more: a GPU that idled while the weights loaded raises its clocks only
 * under steady work (an H200 ran the first prefills after a 10 s load up to
 * 3x slower, and a first call of over a second used to be the whole
 * warm-up).
 */
export async function warmUp(call: () => Promise<unknown>, ms = 1000): Promise<void> {
  await call();
  const t0 = performance.now();
  do await call();
  while (performance.now() - t0 < ms);
}
