// Loading a model in a real browser: from a URL into the model cache (OPFS or
// the Cache API) so that a second visit makes no request at all, resuming an
// interrupted download with a Range request, listing and evicting cached
// models, and loading a folder the user picked.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createReadStream, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { loadModel } from "../dist/runtime/load.js";
import { allModelRequests, cliGreedy, generateInPage, launchBrowser, MODEL_DIR, modelRequests, openDemo, ROOT, settled, startServer, watchPage } from "./browser-harness.mjs";

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

test("cache none: the weights are read with Range requests and nothing is kept", async () => {
  const server = await startServer();
  try {
    const page = await browser.context.newPage();
    assert.is(await openDemo(page, server, { device: "wasm", cache: "none" }), "ready", await page.textContent("#error"));
    const reads = modelRequests(server, WEIGHTS).filter((r) => r.method === "GET");
    assert.ok(reads.length > 1, `${reads.length} reads`);
    assert.ok(reads.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? "") && r.status === 206), JSON.stringify(reads.slice(0, 3)));
    assert.match(await page.textContent("#info"), /Loaded fromnone/);
    assert.not.ok((await cacheList(page)).some((m) => m.url === `${server.url}/test-model`));
    const out = await generateInPage(page, PROMPT, TOKENS);
    assert.is(out.text, expected);
    await page.close();
  } finally {
    await server.close();
  }
});

test("a sharded checkpoint is downloaded shard by shard into the cache and gives the reference engine's tokens", async () => {
  const dir = join(ROOT, "test", "fixtures", "sharded-f16");
  const greedy = { temperature: 0, maxNewTokens: 8, ignoreEos: true };
  const prompt = [1, 5, 9, 150];
  const ref = await loadModel(dir, { device: "reference", costCache: null, tokenizer: null });
  const want = (await ref.generateText(prompt, greedy)).tokens;
  await ref.dispose();
  const server = await startServer();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/examples/web/`);
    const got = await page.evaluate(
      async ({ prompt, greedy }) => {
        const { loadModelInWorker } = await import("/dist/bundle/browser/index.js");
        const model = await loadModelInWorker("/test/fixtures/sharded-f16/", { device: "wasm", cache: "opfs" });
        const result = await model.generateText(prompt, greedy);
        await model.dispose();
        return result.tokens;
      },
      { prompt, greedy },
    );
    assert.equal(got, want);
    const listed = (await cacheList(page)).find((m) => m.url === `${server.url}/test/fixtures/sharded-f16`);
    assert.equal(listed.files.map((f) => f.name).filter((n) => n.endsWith(".safetensors")).sort(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    assert.ok(listed.files.some((f) => f.name === "model.safetensors.index.json"));
    assert.is(listed.complete, true);
    await page.close();
  } finally {
    await server.close();
  }
});

test("a model URL that is not there fails the load with one line naming the file", async () => {
  const server = await startServer();
  try {
    const page = await browser.context.newPage();
    assert.is(await openDemo(page, server, { model: "/no-such-model/" }), "error");
    assert.is(await page.textContent("#error"), `io: ${server.url}/no-such-model/config.json: HTTP 404 Not Found`);
    await page.close();
  } finally {
    await server.close();
  }
});

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

for (const picker of ["folder", "files"]) {
  test(`picked model ${picker} load with no request and generate the same text`, async () => {
    const server = await startServer();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${server.url}/examples/web/`);
      const files = readdirSync(MODEL_DIR).filter((f) => f.endsWith(".json") || f.endsWith(".safetensors")).map((f) => join(MODEL_DIR, f));
      await page.setInputFiles(`#model-${picker}`, picker === "folder" ? MODEL_DIR : files);
      await page.selectOption("#device", "wasm");
      await page.click("#load");
      assert.is(await settled(page), "ready", await page.textContent("#error"));
      assert.equal(allModelRequests(server), []);
      const info = await page.textContent("#info");
      assert.match(info, /Loaded fromfiles/);
      // A picked folder's name labels the model.
      if (picker === "folder") assert.ok(info.includes(`Model${basename(MODEL_DIR)} `), info);
      const out = await generateInPage(page, PROMPT, TOKENS);
      assert.is(out.text, expected);
      await page.close();
    } finally {
      await server.close();
    }
  });
}

test.run();
