// The safetensors header parser, the byte sources and the f16/bf16 -> f32
// conversions, on files made by an independent writer (test/helpers).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rejects } from "./helpers/rejects.mjs";
import { BlobSource } from "../dist/io/blob-source.js";
import { MemorySource } from "../dist/io/memory-source.js";
import { NodeFileSource } from "../dist/io/node-file-source.js";
import { readTensorF32 } from "../dist/io/read-tensor.js";
import { MAX_HEADER_BYTES, readSafetensors } from "../dist/io/safetensors.js";
import { openUrlSource } from "../dist/io/url-source.js";
import { convertBF16ToF32, convertF16ToF32, f16ToF32 } from "../dist/model/dtype.js";
import { encodeSafetensors, f32Bytes, serveFiles, u16Bytes } from "./helpers/safetensors-writer.mjs";

// Known patterns and their values, from the IEEE 754 / bfloat16 definitions.
const BF16_KNOWN = [
  [0x0000, 0],
  [0x8000, -0],
  [0x3f80, 1],
  [0xc000, -2],
  [0x3eaa, 0.33203125],
  [0x4049, 3.140625],
  [0x7f7f, 3.3895313892515355e38], // largest finite
  [0x0080, 1.1754943508222875e-38], // smallest normal, 2^-126
  [0x0001, 9.183549615799121e-41], // smallest subnormal, 2^-133
  [0x7f80, Infinity],
  [0xff80, -Infinity],
];
const F16_KNOWN = [
  [0x0000, 0],
  [0x8000, -0],
  [0x3c00, 1],
  [0xc000, -2],
  [0x3555, 0.333251953125],
  [0x4248, 3.140625],
  [0x7bff, 65504], // largest finite
  [0x0400, 6.103515625e-5], // smallest normal, 2^-14
  [0x0001, 5.960464477539063e-8], // smallest subnormal, 2^-24
  [0x03ff, 6.097555160522461e-5], // largest subnormal
  [0x7c00, Infinity],
  [0xfc00, -Infinity],
];

function sameValue(actual, expected, what) {
  assert.ok(Object.is(actual, expected), `${what}: got ${actual}, expected ${expected}`);
}


const parse = (bytes, label = "test.safetensors") => readSafetensors(new MemorySource(bytes, label));

test("bf16 and f16 bit patterns convert to their exact values", () => {
  const bf = new Float32Array(BF16_KNOWN.length);
  convertBF16ToF32(Uint16Array.from(BF16_KNOWN, ([b]) => b), bf);
  BF16_KNOWN.forEach(([bits, v], i) => sameValue(bf[i], v, `bf16 0x${bits.toString(16)}`));
  const f = new Float32Array(F16_KNOWN.length);
  convertF16ToF32(Uint16Array.from(F16_KNOWN, ([b]) => b), f);
  F16_KNOWN.forEach(([bits, v], i) => sameValue(f[i], v, `f16 0x${bits.toString(16)}`));
  for (const nan of [0x7e00, 0xfe01, 0x7c01]) assert.ok(Number.isNaN(f16ToF32(nan)), `f16 0x${nan.toString(16)} is NaN`);
  const bfNaN = new Float32Array(1);
  convertBF16ToF32(Uint16Array.of(0x7fc0), bfNaN);
  assert.ok(Number.isNaN(bfNaN[0]));
});

test("every f16 pattern agrees with Math.fround of its defining formula", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const out = new Float32Array(65536);
  convertF16ToF32(all, out);
  for (let bits = 0; bits < 65536; bits++) {
    const e = (bits >> 10) & 31;
    const m = bits & 1023;
    const s = bits >> 15 ? -1 : 1;
    const v = e === 31 ? (m ? NaN : s * Infinity) : e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
    if (!Object.is(out[bits], Math.fround(v))) assert.unreachable(`f16 0x${bits.toString(16)}: ${out[bits]} vs ${v}`);
  }
});

test("a good file: tensors of every weight dtype, metadata, a zero-size tensor, a non-weight dtype", async () => {
  const tensors = [
    { name: "a.f32", dtype: "F32", shape: [2, 3], data: f32Bytes([1, -2, 0.5, 3.25, -0, 1e-20]) },
    { name: "b.bf16", dtype: "BF16", shape: [BF16_KNOWN.length], data: u16Bytes(BF16_KNOWN.map(([b]) => b)) },
    { name: "c.f16", dtype: "F16", shape: [F16_KNOWN.length], data: u16Bytes(F16_KNOWN.map(([b]) => b)) },
    { name: "d.empty", dtype: "F32", shape: [0, 5], data: new Uint8Array(0) },
    { name: "e.scalar", dtype: "F32", shape: [], data: f32Bytes([7]) },
    { name: "f.i64", dtype: "I64", shape: [2], data: new Uint8Array(16) },
  ];
  const file = await parse(encodeSafetensors(tensors, { metadata: { format: "pt", note: "x" } }));
  assert.equal(file.metadata, { format: "pt", note: "x" });
  assert.equal([...file.tensors.keys()].sort(), tensors.map((t) => t.name).sort());
  assert.equal(file.tensors.get("a.f32").shape, [2, 3]);
  assert.is(file.tensors.get("c.f16").dtype, "F16");

  const read = async (name, pieceBytes) => {
    const t = file.tensors.get(name);
    return readTensorF32(file.source, t, new Float32Array(t.shape.reduce((a, b) => a * b, 1)), pieceBytes);
  };
  for (const piece of [4, 6, 8 * 1024 * 1024]) {
    assert.equal(Array.from(await read("a.f32", piece)), Array.from(Float32Array.of(1, -2, 0.5, 3.25, -0, 1e-20)));
    const bf = await read("b.bf16", piece);
    BF16_KNOWN.forEach(([bits, v], i) => sameValue(bf[i], v, `bf16 0x${bits.toString(16)} (piece ${piece})`));
    const f = await read("c.f16", piece);
    F16_KNOWN.forEach(([bits, v], i) => sameValue(f[i], v, `f16 0x${bits.toString(16)} (piece ${piece})`));
  }
  assert.is((await read("d.empty")).length, 0);
  assert.equal(Array.from(await read("e.scalar")), [7]);
  await rejects(() => read("f.i64"), "weights", ["test.safetensors", "f.i64", "I64"]);
});

test("tensors in any header order, unpadded header, no metadata", async () => {
  const bytes = encodeSafetensors(
    [
      { name: "x", dtype: "F32", shape: [1], data: f32Bytes([2]) },
      { name: "y", dtype: "F32", shape: [2], data: f32Bytes([3, 4]) },
    ],
    { pad: false, mutate: (h) => ({ y: h.y, x: h.x }) },
  );
  const file = await parse(bytes);
  assert.equal(file.metadata, {});
  const y = file.tensors.get("y");
  assert.equal(Array.from(await readTensorF32(file.source, y, new Float32Array(2))), [3, 4]);
});

const one = [{ name: "w", dtype: "F32", shape: [2, 2], data: f32Bytes([1, 2, 3, 4]) }];
const two = [
  { name: "first", dtype: "F32", shape: [2], data: f32Bytes([1, 2]) },
  { name: "second", dtype: "F16", shape: [2], data: u16Bytes([0x3c00, 0x4000]) },
];
const BAD_FILES = [
  ["empty file", new Uint8Array(0), ["too short"]],
  ["shorter than the length field", new Uint8Array(5), ["too short"]],
  ["truncated data", encodeSafetensors(one, { truncate: 3 }), ['"w"', "past", "truncated"]],
  ["truncated inside the header", encodeSafetensors(one).subarray(0, 20), ["header length", "truncated"]],
  ["header length larger than the file", encodeSafetensors(one, { headerLength: 5000n }), ["header length 5000"]],
  ["header length larger than the cap", encodeSafetensors(one, { headerLength: BigInt(MAX_HEADER_BYTES + 1) }), ["exceeds", String(MAX_HEADER_BYTES)]],
  ["header length 2^64-1", encodeSafetensors(one, { headerLength: 2n ** 64n - 1n }), ["exceeds"]],
  ["header length shorter than the JSON", encodeSafetensors(one, { headerLength: 10n }), ["not valid JSON"]],
  ["not JSON", encodeSafetensors([], { rawHeader: "{not json}" }), ["not valid JSON"]],
  ["not UTF-8", (() => {
    const b = encodeSafetensors([], { rawHeader: '{"a":"??"}' });
    b[14] = 0xff;
    b[15] = 0xfe;
    return b;
  })(), ["UTF-8"]],
  ["a JSON list", encodeSafetensors([], { rawHeader: "[]" }), ["start with '{'"]],
  ["leading space", encodeSafetensors([], { rawHeader: " {}" }), ["start with '{'"]],
  ["unknown dtype", encodeSafetensors(one, { mutate: (h) => ((h.w.dtype = "F12"), h) }), ['"w"', 'unknown dtype "F12"']],
  ["dtype not a string", encodeSafetensors(one, { mutate: (h) => ((h.w.dtype = 4), h) }), ['"w"', "dtype"]],
  ["shape x dtype larger than the range", encodeSafetensors(one, { mutate: (h) => ((h.w.shape = [2, 3]), h) }), ['"w"', "needs 24 bytes", "hold 16"]],
  ["shape x dtype smaller than the range", encodeSafetensors(one, { mutate: (h) => ((h.w.dtype = "F16"), h) }), ['"w"', "needs 8 bytes", "hold 16"]],
  ["negative dimension", encodeSafetensors(one, { mutate: (h) => ((h.w.shape = [-2, -2]), h) }), ['"w"', "shape"]],
  ["fractional dimension", encodeSafetensors(one, { mutate: (h) => ((h.w.shape = [1.5, 2]), h) }), ['"w"', "shape"]],
  ["huge dimensions", encodeSafetensors(one, { mutate: (h) => ((h.w.shape = [2 ** 40, 2 ** 40]), h) }), ['"w"', "impossibly large"]],
  ["shape not a list", encodeSafetensors(one, { mutate: (h) => ((h.w.shape = "2x2"), h) }), ['"w"', "shape"]],
  ["offsets missing", encodeSafetensors(one, { mutate: (h) => (delete h.w.data_offsets, h) }), ['"w"', "data_offsets"]],
  ["three offsets", encodeSafetensors(one, { mutate: (h) => ((h.w.data_offsets = [0, 8, 16]), h) }), ['"w"', "data_offsets"]],
  ["offsets reversed", encodeSafetensors(one, { mutate: (h) => ((h.w.data_offsets = [16, 0]), h) }), ['"w"', "end before"]],
  ["range past the end", encodeSafetensors(one, { mutate: (h) => ((h.w.data_offsets = [8, 24]), h) }), ['"w"', "past the 16-byte data section"]],
  ["overlapping ranges", encodeSafetensors(two, { mutate: (h) => ((h.second.data_offsets = [4, 8]), h), trailing: 0 }), ['"first"', '"second"', "overlap"]],
  ["a gap between ranges", encodeSafetensors(two, { mutate: (h) => ((h.second.data_offsets = [12, 16]), h), trailing: 4 }), ["unused bytes", '"second"']],
  ["trailing bytes", encodeSafetensors(one, { trailing: 3 }), ["3 bytes after the last tensor"]],
  ["tensor entry not an object", encodeSafetensors([], { mutate: (h) => ((h.w = [1, 2]), h) }), ['"w"', "expected an object"]],
  ["metadata value not a string", encodeSafetensors(one, { metadata: { epoch: 3 } }), ["__metadata__", "epoch"]],
  ["metadata a list", encodeSafetensors(one, { mutate: (h) => ((h.__metadata__ = ["a"]), h) }), ["__metadata__"]],
];

for (const [what, bytes, mentions] of BAD_FILES)
  test(`refused: ${what}`, async () => {
    await rejects(() => parse(bytes, "bad.safetensors"), "format", ["bad.safetensors", ...mentions]);
  });

test("control characters in tensor names stay out of the one-line message", async () => {
  const bytes = encodeSafetensors([{ name: "evil\nname\u001b[31m", dtype: "Q4", shape: [1], data: new Uint8Array(1) }]);
  const e = await rejects(() => parse(bytes), "format", ["unknown dtype"]);
  assert.not.ok(e.message.includes("\u001b"));
});

test("NodeFileSource: positional reads, into a caller's buffer, missing file, truncated while open", async () => {
  const dir = mkdtempSync(join(tmpdir(), "metala-st-"));
  try {
    const path = join(dir, "m.safetensors");
    writeFileSync(path, encodeSafetensors(two));
    const source = await NodeFileSource.open(path);
    assert.is(source.label, path);
    const file = await readSafetensors(source);
    const dest = new Float32Array(2);
    assert.equal(Array.from(await readTensorF32(source, file.tensors.get("second"), dest)), [1, 2]);
    const shared = new Uint8Array(new SharedArrayBuffer(4));
    await source.read(0, 4, shared);
    assert.equal(Array.from(shared), Array.from(new Uint8Array(await source.read(0, 4))));
    writeFileSync(path, new Uint8Array(10)); // shrinks under the open handle
    await rejects(() => source.read(8, 20), "io", [path, "truncated"]);
    await source.close();
    await rejects(() => NodeFileSource.open(join(dir, "nope.safetensors")), "io", ["nope.safetensors", "no such file"]);
    await rejects(() => NodeFileSource.open(dir), "io", [dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("BlobSource reads slices of a Blob", async () => {
  const bytes = encodeSafetensors(two);
  const source = new BlobSource(new Blob([bytes]), "drop/model.safetensors");
  assert.is(source.size, bytes.length);
  const file = await readSafetensors(source);
  assert.equal(Array.from(await readTensorF32(source, file.tensors.get("first"), new Float32Array(2))), [1, 2]);
  const named = new BlobSource(new File([bytes], "picked.safetensors"));
  assert.is(named.label, "picked.safetensors");
});

test("URL source: Range requests against a local server, 206 checked, size from Content-Range", async () => {
  const bytes = encodeSafetensors(two);
  const server = await serveFiles({ "/m.safetensors": bytes });
  try {
    const source = await openUrlSource(`${server.base}/m.safetensors`);
    assert.is(source.size, bytes.length);
    const file = await readSafetensors(source);
    const t = file.tensors.get("second");
    assert.equal(Array.from(await readTensorF32(source, t, new Float32Array(2), 2)), [1, 2]);
    const ranges = server.log.map((r) => r.range);
    assert.equal(ranges[0], "bytes=0-0");
    assert.ok(ranges.every((r) => /^bytes=\d+-\d+$/.test(r)), "every request is a range");
    assert.ok(ranges.includes(`bytes=${t.begin}-${t.begin + 1}`), "2-byte pieces");
    await rejects(() => openUrlSource(`${server.base}/missing.safetensors`), "io", ["missing.safetensors", "404"]);
  } finally {
    await server.close();
  }
});

test("URL source: a server that ignores Range is downloaded whole when small, refused when large", async () => {
  const bytes = encodeSafetensors(two);
  const server = await serveFiles({ "/m.safetensors": bytes }, { ignoreRange: true });
  try {
    const source = await openUrlSource(`${server.base}/m.safetensors`);
    assert.ok(source.label.includes("ignores Range"), source.label);
    const file = await readSafetensors(source);
    assert.equal(Array.from(await readTensorF32(source, file.tensors.get("first"), new Float32Array(2))), [1, 2]);
    assert.is(server.log.length, 1, "one request, the whole file");
    await rejects(() => openUrlSource(`${server.base}/m.safetensors`, { maxWholeFileBytes: 16 }), "io", ["m.safetensors", "ignores Range", `${bytes.length} bytes`]);
  } finally {
    await server.close();
  }
});

test("URL source: a server that switches to 200 mid-way, or sends the wrong range, is an io error", async () => {
  const bytes = encodeSafetensors(two);
  let mode = "ok";
  const fakeFetch = async (url, init) => {
    const range = /bytes=(\d+)-(\d+)/.exec(init.headers.Range);
    const [s, e] = [Number(range[1]), Number(range[2])];
    if (mode === "200" && s > 0) return new Response(bytes, { status: 200 });
    const [from, to] = mode === "shifted" && s > 0 ? [s + 1, e + 1] : [s, e];
    return new Response(bytes.slice(from, to + 1), { status: 206, headers: { "Content-Range": `bytes ${from}-${to}/${bytes.length}` } });
  };
  const source = await openUrlSource("https://example.test/m.safetensors", { fetch: fakeFetch });
  mode = "200";
  await rejects(() => source.read(8, 4), "io", ["example.test/m.safetensors", "HTTP 200"]);
  mode = "shifted";
  await rejects(() => source.read(8, 4), "io", ["asked for bytes 8-11", "sent 9-12"]);
  const failing = async () => {
    throw new TypeError("fetch failed");
  };
  await rejects(() => openUrlSource("https://example.test/m.safetensors", { fetch: failing }), "io", ["example.test", "fetch failed"]);
});

test.run();
