import type { ModelState } from "../engine.js";
import { MetalaError } from "../errors.js";

/**
 * The GPU went away (device lost, or a validation/out-of-memory error made
 * its results untrustworthy). Carries the state after the last chunk that
 * completed and was read back, and the tokens consumed since then, so the
 * caller can continue on another engine: importState(state), then feed
 * `replay` again.
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
