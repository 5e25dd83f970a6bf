import type { ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";

/**
 * The GPU went away (device lost, or a validation/out-of-memory error made
 * its results untrustworthy). Carries the state after the last chunk that
 * completed and was read back (every prefill chunk is), and `replay`: the
 * tokens of the calls that completed since then (decode steps), not those of
 * the call that failed. To continue on another engine: importState(state),
 * feed `replay`, then retry the failed call.
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
