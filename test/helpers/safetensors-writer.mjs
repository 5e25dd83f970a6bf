// A small safetensors writer for tests, written from the format description
// and independent of src/: it makes good files and, through its options,
// precisely broken ones. It also knows the official MetaLA tensor names
// (copied from the spec, not from src/model/names.ts) so that checkpoint
// tests check the loader's name table instead of trusting it.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ELEMENT_BYTES = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, F64: 8 };

/**
 * tensors: [{ name, dtype, shape, data: Uint8Array }]; data is laid out in the
 * order given. Options to break the file:
 *   mutate(header) -> header   edit the JSON object before encoding
 *   rawHeader: string          use this header text as is
 *   headerLength: bigint       write this in the length field
 *   pad: false                 no 8-byte alignment spaces
 *   trailing: number           extra zero bytes after the data
 *   truncate: number           drop this many bytes from the end
 */
export function encodeSafetensors(tensors, options = {}) {
  let header = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  if (options.mutate) header = options.mutate(header);
  let text = options.rawHeader ?? JSON.stringify(header);
  if (options.pad !== false) while (new TextEncoder().encode(text).length % 8 !== 0) text += " ";
  const headerBytes = new TextEncoder().encode(text);
  const total = 8 + headerBytes.length + offset + (options.trailing ?? 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setBigUint64(0, options.headerLength ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return options.truncate ? out.subarray(0, total - options.truncate) : out;
}

export function f32Bytes(values) {
  return new Uint8Array(Float32Array.from(values).buffer);
}

export function u16Bytes(patterns) {
  return new Uint8Array(Uint16Array.from(patterns).buffer);
}

/** bf16 patterns of values that bf16 holds exactly (the top half of their f32 pattern). */
export function bf16Patterns(values) {
  const u32 = new Uint32Array(Float32Array.from(values).buffer);
  return Array.from(u32, (bits, i) => {
    if (bits & 0xffff) throw new Error(`test value ${values[i]} is not exact in bf16`);
    return bits >>> 16;
  });
}

/** f16 patterns of values that f16 holds exactly as normal numbers or zero. */
export function f16Patterns(values) {
  return values.map((v) => {
    if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
    const sign = v < 0 ? 0x8000 : 0;
    const a = Math.abs(v);
    const e = Math.floor(Math.log2(a));
    const fraction = (a / 2 ** e - 1) * 1024;
    if (e < -14 || e > 15 || !Number.isInteger(fraction)) throw new Error(`test value ${v} is not an exact normal f16`);
    return sign | ((e + 15) << 10) | fraction;
  });
}

export function bytesOf(dtype, values) {
  if (dtype === "F32") return f32Bytes(values);
  if (dtype === "BF16") return u16Bytes(bf16Patterns(values));
  if (dtype === "F16") return u16Bytes(f16Patterns(values));
  throw new Error(`no encoder for ${dtype}`);
}

export function elementBytes(dtype) {
  return ELEMENT_BYTES[dtype];
}

/**
 * The official tensor list of a MetaLA checkpoint (spec section 3), for a
 * small config { d, layers, heads, glu, vocab, bias, layernorm, untied }.
 */
export function metalaTensors(c) {
  const dk = c.d / 2;
  const list = [["model.embed_tokens.weight", [c.vocab, c.d]]];
  for (let i = 0; i < c.layers; i++) {
    const p = `model.layers.${i}.`;
    list.push(
      [p + "token_mixer.q_proj.weight", [dk, c.d]],
      [p + "token_mixer.k_gate.weight", [dk, c.d]],
      [p + "token_mixer.v_proj.weight", [c.d, c.d]],
      [p + "token_mixer.g_proj.weight", [c.d, c.d]],
      [p + "token_mixer.g_proj.bias", [c.d]],
      [p + "token_mixer.out_proj.weight", [c.d, c.d]],
      [p + "token_mixer.aug_balance", [dk]],
      [p + "token_mixer.conv1d.weight", [c.d, 1, 4]],
      [p + "channel_mixer.l1.weight", [c.glu, c.d]],
      [p + "channel_mixer.l2.weight", [c.glu, c.d]],
      [p + "channel_mixer.l3.weight", [c.d, c.glu]],
    );
    if (c.bias) list.push([p + "channel_mixer.l1.bias", [c.glu]], [p + "channel_mixer.l2.bias", [c.glu]], [p + "channel_mixer.l3.bias", [c.d]]);
    if (c.layernorm)
      list.push([p + "token_norm.weight", [c.d]], [p + "token_norm.bias", [c.d]], [p + "channel_norm.weight", [c.d]], [p + "channel_norm.bias", [c.d]]);
  }
  if (c.layernorm) list.push(["model.final_norm.weight", [c.d]], ["model.final_norm.bias", [c.d]]);
  if (c.untied) list.push(["lm_head.weight", [c.vocab, c.d]]);
  return list.map(([name, shape]) => ({ name, shape }));
}

/** Values every 16-bit format holds exactly (multiples of 1/4 in [-2, 2]), different per tensor. */
export function testValues(tensorIndex, count) {
  return Array.from({ length: count }, (_, i) => (((i * 7 + tensorIndex * 3) % 17) - 8) / 4);
}

export function configJson(c, extra = {}) {
  return {
    model_type: "metala",
    decoder_embed_dim: c.d,
    decoder_layers: c.layers,
    decoder_attention_heads: c.heads,
    glu_dim: c.glu,
    vocab_size: c.vocab,
    bias: !!c.bias,
    norm_type: c.layernorm ? "layernorm" : "simplermsnorm",
    ...extra,
  };
}

/**
 * Writes a model folder: config.json and model.safetensors, or with
 * `shards: 2` two shards and model.safetensors.index.json. Options:
 * dtype, omit (tensor name), reshape ({name: shape}), dtypeOf ({name: dtype}),
 * config (extra config.json fields), configText, indexText.
 * Returns the expected f32 values by tensor name.
 */
export function writeCheckpoint(dir, c, options = {}) {
  mkdirSync(dir, { recursive: true });
  const dtype = options.dtype ?? "F32";
  const expected = new Map();
  const tensors = [];
  metalaTensors(c).forEach(({ name, shape }, index) => {
    if (name === options.omit) return;
    const realShape = options.reshape?.[name] ?? shape;
    const count = realShape.reduce((a, b) => a * b, 1);
    const values = testValues(index, count);
    const tensorDtype = options.dtypeOf?.[name] ?? dtype;
    const data = tensorDtype === "I64" ? new Uint8Array(count * 8) : bytesOf(tensorDtype, values);
    expected.set(name, Float32Array.from(values));
    tensors.push({ name, dtype: tensorDtype, shape: realShape, data });
  });
  writeFileSync(join(dir, "config.json"), options.configText ?? JSON.stringify(configJson(c, options.config)));
  if ((options.shards ?? 1) === 1) {
    writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(tensors));
    return expected;
  }
  const half = Math.ceil(tensors.length / 2);
  const parts = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap = {};
  parts.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(dir, file), encodeSafetensors(part));
    for (const t of part) weightMap[t.name] = file;
  });
  const index = { metadata: { total_size: tensors.reduce((a, t) => a + t.data.length, 0) }, weight_map: weightMap };
  writeFileSync(join(dir, "model.safetensors.index.json"), options.indexText ?? JSON.stringify(index));
  return expected;
}

/**
 * A local HTTP server on 127.0.0.1 serving `files` (path -> Uint8Array),
 * honouring single Range requests unless `ignoreRange`. `log` records each
 * request's method, path and range, so tests can see how a source reads.
 */
export async function serveFiles(files, { ignoreRange = false } = {}) {
  const { createServer } = await import("node:http");
  const log = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const body = files[path];
    log.push({ method: req.method, path, range: req.headers.range });
    if (!body) {
      res.writeHead(404).end("not found");
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (ignoreRange || !m) {
      res.writeHead(200, { "Content-Length": body.length });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    if (start >= body.length) {
      res.writeHead(416, { "Content-Range": `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { "Content-Range": `bytes ${start}-${end}/${body.length}`, "Content-Length": end - start + 1 });
    res.end(body.subarray(start, end + 1));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, log, close: () => new Promise((resolve) => server.close(resolve)) };
}
