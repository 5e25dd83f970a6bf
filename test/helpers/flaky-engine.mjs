// Test doubles for the scheduler: a real engine (the reference) presented as
// another kind, optionally failing the way a lost GPU device does.
//
//   const gpu = asEngineKind(ref, "webgpu", { failAfterCalls: 3 });
//   // prefill/step calls 1..3 run; the 4th and every later call on any of its
//   // sessions throws, as does exportState (the device and its buffers are gone).
//   gpu.calls     // prefill/step calls made so far, successful or not
//   gpu.failures  // calls that threw
//
// The error thrown is a plain Error, as a WebGPU implementation's
// GPUDeviceLostInfo / validation errors would surface: not a MetalaError.

export class DeviceLostError extends Error {
  constructor() {
    super("GPU device was lost (injected by the test double)");
    this.name = "DeviceLostError";
  }
}

export function asEngineKind(engine, kind, { failAfterCalls = Infinity } = {}) {
  const double = {
    kind,
    config: engine.config,
    description: `${kind} double of ${engine.description}`,
    calls: 0,
    failures: 0,
    lost: false,
    /** Counts prefill/step pieces for this test's own assertions, e.g. which engine ran. */
    log: [],
    createSession() {
      const inner = engine.createSession();
      const guard = (what) => {
        if (double.lost) {
          double.failures++;
          throw new DeviceLostError();
        }
        double.calls++;
        if (double.calls > failAfterCalls) {
          double.lost = true;
          double.failures++;
          throw new DeviceLostError();
        }
        double.log.push(what);
      };
      return {
        async prefill(tokens, want) {
          guard(`prefill ${tokens.length}`);
          return inner.prefill(tokens, want);
        },
        async step(token) {
          guard("step");
          return inner.step(token);
        },
        async exportState() {
          if (double.lost) throw new DeviceLostError();
          return inner.exportState();
        },
        async importState(state) {
          if (double.lost) throw new DeviceLostError();
          return inner.importState(state);
        },
        reset() {
          inner.reset();
        },
        dispose() {
          inner.dispose();
        },
      };
    },
    async dispose() {},
  };
  return double;
}
