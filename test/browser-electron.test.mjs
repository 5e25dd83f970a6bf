// The Electron example's two entry points, run without Electron (which
// cannot be downloaded on the build machines): the main-process model under
// plain Node, and the renderer page in headless Chromium. Both must give
// the CLI's greedy text.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { cliGreedy, launchBrowser, MODEL_DIR, MODEL_PATH, ROOT, settled, startServer, watchPage } from "./browser-harness.mjs";

const PROMPT = "The jury said";
const TOKENS = 12;
const EXAMPLE = join(ROOT, "examples", "electron");

let expected;
test.before(() => {
  expected = cliGreedy(PROMPT, TOKENS, "wasm");
});

test("main process: main-model.mjs under Node gives the CLI's greedy text", async () => {
  // What `npm install` in the example does for its "metala": "file:../.." dependency.
  const link = join(EXAMPLE, "node_modules", "metala");
  const made = !existsSync(link);
  if (made) {
    mkdirSync(join(EXAMPLE, "node_modules"), { recursive: true });
    symlinkSync(ROOT, link, "dir");
  }
  try {
    const { createMainModel } = await import(join(EXAMPLE, "main-model.mjs"));
    const main = await createMainModel(MODEL_DIR, { device: "wasm", onWarning: () => {} });
    try {
      const out = await main.generate(PROMPT, { temperature: 0, maxNewTokens: TOKENS });
      assert.is(out.text, expected);
      assert.is(out.stats.prefillEngine, "wasm");
    } finally {
      await main.dispose();
    }
  } finally {
    if (made) rmSync(join(EXAMPLE, "node_modules"), { recursive: true, force: true });
  }
});

test("renderer: the page in Chromium gives the CLI's greedy text", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    const log = watchPage(page);
    await page.goto(`${server.url}/examples/electron/renderer/?model=${MODEL_PATH}&device=wasm`);
    assert.is(await settled(page), "ready", log.join("\n"));
    assert.match(await page.textContent("#main-info"), /Not in Electron/);
    await page.fill("#max-tokens", String(TOKENS));
    await page.click("#renderer-generate");
    assert.is(await settled(page), "done", log.join("\n"));
    assert.is(await page.textContent("#renderer-output"), expected);
  } finally {
    await browser.close();
    await server.close();
  }
});

test.run();
