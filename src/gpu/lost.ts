import type { ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";

/**
 * The GPU went away (device lost, or a validation/out-of-memory error made
 * its results untrustworthy). Carries the last state read back (every
 * prefill chunk's is, landing on the host after its logits), and `replay`:
 * the tokens of the calls that completed since then (decode steps, a
 * prefill whose state had not landed yet), not those of the call that
 * failed. `state.position` counts every token in the state, including the
 * chunks of a failing prefill whose state landed before the failure. To
 * continue on another engine: importState(state), feed `replay`, then the
 * failed call's tokens from the ones not yet in the state.
 */
export class GpuLostError extends MetalaError {
  constructor(
    message: string,
    readonly state: ModelState,
    readonly replay: number[],
  ) {
    super("device", message);
    this.name = "GpuLostError";
  }
}
