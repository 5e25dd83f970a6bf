/**
 * One message channel to or from the model worker, the same over Node's
 * worker_threads and browser Web Workers, so that the client and the host
 * are written once.
 */
export interface Endpoint {
  post(message: unknown, transfer?: Transferable[]): void;
  onMessage(handler: (message: unknown) => void): void;
  /** The worker died (an uncaught error, a failed module load); client side only. */
  onFailure(handler: (message: string) => void): void;
  /** Node: let the process exit while no request is pending. No-op in browsers. */
  hold(held: boolean): void;
  terminate(): void;
}

function isNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } } };
  return !!g.process?.versions?.node;
}

/** Starts the model worker from its module URL. */
export async function spawnWorker(url: URL): Promise<Endpoint> {
  if (isNode()) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(url);
    w.unref();
    return {
      post: (m, transfer) => w.postMessage(m, transfer as never),
      onMessage: (h) => void w.on("message", h),
      onFailure: (h) => {
        w.on("error", (e) => h(e.message));
        w.on("exit", (code) => h(`the model worker exited (code ${code})`));
      },
      hold: (held) => (held ? w.ref() : w.unref()),
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(url, { type: "module", name: "metala-model" });
  return {
    post: (m, transfer) => w.postMessage(m, transfer ?? []),
    onMessage: (h) => w.addEventListener("message", (e) => h(e.data)),
    onFailure: (h) => {
      w.addEventListener("error", (e) => h(e.message || "the model worker failed to start (see the browser console)"));
      w.addEventListener("messageerror", () => h("a message from the model worker could not be read"));
    },
    hold: () => {},
    terminate: () => w.terminate(),
  };
}

/** The worker's side of the channel: parentPort in Node, the worker global in browsers. */
export async function parentEndpoint(): Promise<Endpoint> {
  if (isNode()) {
    const { parentPort } = await import("node:worker_threads");
    if (!parentPort) throw new Error("the metala model worker must be started as a worker thread");
    return {
      post: (m, transfer) => parentPort.postMessage(m, transfer as never),
      onMessage: (h) => void parentPort.on("message", h),
      onFailure: () => {},
      hold: () => {},
      terminate: () => parentPort.close(),
    };
  }
  const scope = globalThis as unknown as {
    postMessage(m: unknown, transfer: Transferable[]): void;
    addEventListener(type: "message", h: (e: MessageEvent) => void): void;
    close(): void;
  };
  return {
    post: (m, transfer) => scope.postMessage(m, transfer ?? []),
    onMessage: (h) => scope.addEventListener("message", (e) => h(e.data)),
    onFailure: () => {},
    hold: () => {},
    terminate: () => scope.close(),
  };
}

/**
 * Lets queued messages (an abort) in between tokens: the engines' work
 * resolves as microtasks, which never give the event loop a turn.
 * setImmediate in Node; a MessageChannel hop in browsers (setTimeout is
 * clamped to 4 ms when nested).
 */
export function yieldToEvents(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (g.setImmediate) return new Promise((resolve) => g.setImmediate!(resolve));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(0);
  });
}
