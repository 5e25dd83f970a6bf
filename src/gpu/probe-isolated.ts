import { spawn } from "node:child_process";
import type { WebGpuInfo } from "./device.js";

/**
 * Node only. Dawn writes driver diagnostics straight to the process's stderr
 * while it looks for adapters (Mesa's software Vulkan drivers, a missing
 * XDG_RUNTIME_DIR, a loader with no GPU), and nothing in JavaScript can
 * silence a native write. A CLI run with `--device auto` must not print them,
 * so the automatic probe asks a child process, whose stderr is dropped; Dawn
 * is loaded into this process only once an engine is really wanted on it.
 */
export function webgpuInfoIsolated(timeoutMs = 30_000): Promise<WebGpuInfo> {
  const deviceModule = new URL("./device.js", import.meta.url).href;
  const script = `import(${JSON.stringify(deviceModule)}).then(async (m) => process.stdout.write(JSON.stringify(await m.webgpuInfo()))).then(() => process.exit(0))`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ available: false, reason: `WebGPU probe could not start: ${e.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as WebGpuInfo);
      } catch {
        resolve({ available: false, reason: `WebGPU probe ended without an answer (exit ${code ?? "killed"})` });
      }
    });
  });
}
