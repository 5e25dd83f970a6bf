// What the browser tests share: a headless Debian chromium driven by
// playwright-core (WebGPU on SwiftShader), the demo server, the demo page
// driven like a user would, and the CLI's greedy text as the expected value.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startDemoServer } from "../examples/web/server.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ARTIFACTS = join(ROOT, "test", "artifacts");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * The model the browser tests run: the embedded default model, or the folder
 * METALA_TEST_MODEL names. Served under /test-model/.
 */
export const MODEL_DIR = process.env.METALA_TEST_MODEL ?? join(ROOT, "models", "metala-brown");
export const MODEL_PATH = "/test-model/";

export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** A browser with a fresh profile (so no cached model survives from another run); close() deletes the profile. */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const profile = mkdtempSync(join(tmpdir(), "metala-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The demo server with the test model mounted; options pass through to startDemoServer. */
export function startServer(options = {}) {
  return startDemoServer({ port: 0, ...options, mounts: { [MODEL_PATH]: MODEL_DIR, ...options.mounts } });
}

/** Requests the server saw for a file of the test model. */
export function modelRequests(server, file) {
  return server.requests.filter((r) => r.path === `${MODEL_PATH}${file}`);
}

/** Requests the server saw for any file of the test model. */
export function allModelRequests(server) {
  return server.requests.filter((r) => r.path.startsWith(MODEL_PATH));
}

/** The CLI's greedy continuation of `prompt`, the expected value of every page test: its stdout less the newline it ends with. */
export function cliGreedy(prompt, maxTokens, device) {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "bin", "metala.js"), "generate", "--model", MODEL_DIR, "--prompt", prompt, "--max-tokens", String(maxTokens), "--temperature", "0", "--device", device],
    { encoding: "utf8", timeout: 300_000, env: { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? "/usr/lib/chromium/vk_swiftshader_icd.json" } },
  );
  if (r.status !== 0) throw new Error(`metala generate failed (${r.status}): ${r.stderr}`);
  if (!r.stdout.endsWith("\n")) throw new Error(`metala generate printed no final newline: ${JSON.stringify(r.stdout)}`);
  return r.stdout.slice(0, -1);
}

/** Collects the page's console errors and uncaught exceptions, for assertion messages. */
export function watchPage(page) {
  const log = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
  return log;
}

const SETTLED = ["ready", "done", "stopped", "error"];

/** Waits until the page's data-state leaves the busy states; returns it. */
export async function settled(page, timeout = 180_000) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), SETTLED, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

/** Opens the demo on the test model and waits for the load to end. */
export async function openDemo(page, server, params = {}) {
  const query = new URLSearchParams({ model: MODEL_PATH, autoload: "1", ...params });
  await page.goto(`${server.url}/examples/web/?${query}`);
  return settled(page);
}

/** Generates greedily through the page's form; returns the page's text and what ran where. */
export async function generateInPage(page, prompt, maxTokens) {
  await page.fill("#prompt", prompt);
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", String(maxTokens));
  await page.click("#generate");
  const state = await settled(page);
  return page.evaluate((state) => ({
    state,
    text: document.getElementById("output").textContent,
    error: document.getElementById("error").textContent,
    stats: document.getElementById("stats").textContent,
    prefillEngine: document.body.dataset.prefillEngine,
    decodeEngines: document.body.dataset.decodeEngines,
  }), state);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
}
