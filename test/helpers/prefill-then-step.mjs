// An engine session against the reference engine over the same tokens: the
// first `split` prefilled at once, the rest one step at a time; the relative
// errors of the logits (every position) and of the final state.
import { logitsError, stateError } from "./fixtures.mjs";

export async function prefillThenStepErrors(session, reference, tokens, split) {
  const want = await reference.createSession().prefill(tokens, "all");
  const got = await session.prefill(tokens.slice(0, split), "all");
  for (const t of tokens.slice(split)) got.push(await session.step(t));
  const r = reference.createSession();
  await r.prefill(tokens, "none");
  return { logits: logitsError(got, want), state: stateError(await session.exportState(), await r.exportState()) };
}
