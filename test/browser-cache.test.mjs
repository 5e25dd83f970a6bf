// Loading a model in a real browser: from a URL into the model cache (OPFS or
// the Cache API) so that a second visit makes no request at all, resuming an
// interrupted download with a Range request, listing and evicting cached
// models, and loading a folder the user picked.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createReadStream, statSync } from "node:fs";
import { join } from "node:path";
import { allModelRequests, cliGreedy, generateInPage, launchBrowser, MODEL_DIR, modelRequests, openDemo, settled, startServer, watchPage } from "./browser-harness.mjs";

const PROMPT = "The jury said";
const TOKENS = 8;
const WEIGHTS = "model.safetensors";

let browser;
let expected;
test.before(async () => {
  browser = await launchBrowser();
  expected = cliGreedy(PROMPT, TOKENS, "wasm");
});
test.after(async () => {
  await browser?.close();
});

/** The page's view of the cache, through the bundle's API. */
function cacheList(page) {
  return page.evaluate(async () => (await import("/dist/bundle/browser/index.js")).listCachedModels());
}

for (const cache of ["opfs", "cache-api"]) {
  test(`${cache}: the second visit downloads nothing and generates the same text`, async () => {
    const server = await startServer();
    try {
      const first = await browser.context.newPage();
      const log = watchPage(first);
      assert.is(await openDemo(first, server, { device: "wasm", cache }), "ready", log.join("\n"));
      const gets = modelRequests(server, WEIGHTS).filter((r) => r.method === "GET");
      assert.is(gets.length, 1, "the weights are downloaded once");
      assert.match(await first.textContent("#info"), new RegExp(`Loaded from${cache}`));
      await first.close();

      server.requests.length = 0;
      const second = await browser.context.newPage();
      assert.is(await openDemo(second, server, { device: "wasm", cache }), "ready");
      assert.equal(allModelRequests(server), [], "a cached model makes no request");
      const out = await generateInPage(second, PROMPT, TOKENS);
      assert.is(out.text, expected);

      const listed = (await cacheList(second)).find((m) => m.url === `${server.url}/test-model`);
      assert.ok(listed, "the model is listed");
      assert.is(listed.store, cache);
      assert.is(listed.complete, true);
      const onDisk = listed.files.reduce((a, f) => a + statSync(join(MODEL_DIR, f.name)).size, 0);
      assert.is(listed.bytes, onDisk);
      assert.ok(listed.files.some((f) => f.name === WEIGHTS));

      const evicted = await second.evaluate(async (url) => (await import("/dist/bundle/browser/index.js")).evictCachedModel(url), listed.url);
      assert.is(evicted, true);
      assert.not.ok((await cacheList(second)).some((m) => m.url === listed.url));
      await second.close();

      server.requests.length = 0;
      const third = await browser.context.newPage();
      assert.is(await openDemo(third, server, { device: "wasm", cache }), "ready");
      assert.is(modelRequests(server, WEIGHTS).filter((r) => r.method === "GET").length, 1, "an evicted model is downloaded again");
      await third.close();
    } finally {
      await server.close();
    }
  });
}

test("an interrupted download resumes with a Range request", async () => {
  const size = statSync(join(MODEL_DIR, WEIGHTS)).size;
  const cut = Math.floor(size / 2);
  let cutOnce = false;
  // The first whole-file download of the weights stops halfway: headers promise the whole file, the socket dies.
  const intercept = (req, res, headers, file) => {
    if (cutOnce || req.method !== "GET" || req.headers.range || !file.endsWith(WEIGHTS)) return false;
    cutOnce = true;
    const { status, ...rest } = headers;
    res.writeHead(status, rest);
    const stream = createReadStream(file, { start: 0, end: cut - 1 });
    stream.pipe(res, { end: false });
    stream.on("end", () => setTimeout(() => res.destroy(), 50));
    return true;
  };
  const server = await startServer({ intercept });
  try {
    const page = await browser.context.newPage();
    const first = await openDemo(page, server, { device: "wasm", cache: "opfs" });
    assert.is(first, "error", "the cut download fails the load");
    assert.match(await page.textContent("#error"), /^io: /);
    const listed = (await cacheList(page)).find((m) => m.url === `${server.url}/test-model`);
    assert.is(listed?.complete, false, "a partial model is listed as incomplete");

    server.requests.length = 0;
    await page.click("#load");
    assert.is(await settled(page), "ready", await page.textContent("#error"));
    const gets = modelRequests(server, WEIGHTS).filter((r) => r.method === "GET");
    assert.is(gets.length, 1);
    const from = Number(/^bytes=(\d+)-$/.exec(gets[0].range ?? "")?.[1]);
    assert.ok(from > 0 && from <= cut, `resumed from byte ${from} (range ${gets[0].range}), cut at ${cut}`);
    assert.is(gets[0].status, 206);
    const out = await generateInPage(page, PROMPT, TOKENS);
    assert.is(out.text, expected);
    await page.close();
  } finally {
    await server.close();
  }
});

test("a picked model folder loads with no request and generates the same text", async () => {
  const server = await startServer();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/examples/web/`);
    await page.setInputFiles("#model-files", MODEL_DIR);
    await page.selectOption("#device", "wasm");
    await page.click("#load");
    assert.is(await settled(page), "ready", await page.textContent("#error"));
    assert.equal(allModelRequests(server), []);
    assert.match(await page.textContent("#info"), /Loaded fromfiles/);
    const out = await generateInPage(page, PROMPT, TOKENS);
    assert.is(out.text, expected);
    await page.close();
  } finally {
    await server.close();
  }
});

test.run();
