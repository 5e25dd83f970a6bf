// The demo page in a real browser (headless Debian chromium; WebGPU on
// SwiftShader): greedy text generated in the page's model worker must equal
// the Node CLI's greedy text for the same prompt, on the CPU engine and on
// the GPU engine. The CLI runs on its CPU engine: greedy text is the same on
// every engine (the runtime's contract), and the CLI on SwiftShader would add
// more than a minute of shader compilation. Screenshots go to test/artifacts/.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cliGreedy, generateInPage, launchBrowser, openDemo, screenshot, startServer, watchPage } from "./browser-harness.mjs";

const PROMPT = "The jury said";
const TOKENS = 16;

let browser;
let server;
let expected;
test.before(async () => {
  expected = cliGreedy(PROMPT, TOKENS, "wasm");
  server = await startServer();
  browser = await launchBrowser();
});
test.after(async () => {
  await browser?.close();
  await server?.close();
});

for (const device of ["wasm", "webgpu"]) {
  test(`the page's greedy text on ${device} equals the CLI's`, async () => {
    const page = await browser.context.newPage();
    const log = watchPage(page);
    const loaded = await openDemo(page, server, { device });
    assert.is(loaded, "ready", `${await page.textContent("#error")}\n${log.join("\n")}`);
    const engines = await page.textContent("#info");
    assert.ok(engines.includes(`${device}:`), `engines loaded: ${engines}`);
    const out = await generateInPage(page, PROMPT, TOKENS);
    await screenshot(page, `browser-demo-${device}.png`);
    assert.is(out.state, "done", `${out.error}\n${log.join("\n")}`);
    assert.is(out.prefillEngine, device);
    assert.is(out.decodeEngines, device);
    assert.ok(out.text.length > 0, "the page generated no text");
    assert.is(out.text, expected);
    await page.close();
  });
}

test("the page is cross-origin isolated and the CPU engine runs threads", async () => {
  const page = await browser.context.newPage();
  assert.is(await openDemo(page, server, { device: "wasm" }), "ready");
  assert.ok(await page.evaluate(() => self.crossOriginIsolated));
  const info = await page.textContent("#info");
  assert.match(info, /threads yes/);
  assert.is(await page.textContent("#warnings"), "");
  await page.close();
});

test("without COOP/COEP the page says why the CPU engine runs on one thread, and still generates the same text", async () => {
  const plain = await startServer({ isolation: false });
  try {
    const expected = cliGreedy(PROMPT, 4, "wasm");
    const page = await browser.context.newPage();
    assert.is(await openDemo(page, plain, { device: "wasm" }), "ready");
    assert.is(await page.evaluate(() => self.crossOriginIsolated), false);
    assert.match(await page.textContent("#info"), /threads no/);
    assert.match(await page.textContent("#warnings"), /not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/);
    const out = await generateInPage(page, PROMPT, 4);
    assert.is(out.text, expected);
    await page.close();
  } finally {
    await plain.close();
  }
});

test("the stop button ends a generation early", async () => {
  const page = await browser.context.newPage();
  assert.is(await openDemo(page, server, { device: "wasm" }), "ready");
  await page.fill("#max-tokens", "100000");
  await page.fill("#temperature", "0.8");
  await page.click("#generate");
  await page.waitForFunction(() => document.getElementById("output").textContent.length > 0);
  await page.click("#stop-button");
  await page.waitForFunction(() => document.body.dataset.state !== "generating");
  assert.is(await page.evaluate(() => document.body.dataset.state), "stopped");
  assert.match(await page.textContent("#stats"), /stopped/);
  await page.close();
});

test.run();
