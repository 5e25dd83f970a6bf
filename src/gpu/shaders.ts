import { MetalaError } from "../errors.js";

/**
 * The WGSL sources live in the package's shaders/ folder (one file per op
 * family). Each file leaves its sizes (tile shapes, model dims) undeclared:
 * the host prepends them as `const`s, so every loop bound is a compile-time
 * constant the driver's compiler can unroll.
 */

const texts = new Map<string, Promise<string>>();

async function readShader(file: string): Promise<string> {
  const url = new URL(`../../shaders/${file}`, import.meta.url);
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    return readFile(url, "utf8");
  }
  const r = await fetch(url);
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.text();
}

export function shaderText(file: string): Promise<string> {
  let t = texts.get(file);
  if (!t) {
    t = readShader(file).catch((e) => {
      texts.delete(file);
      throw new MetalaError("io", `cannot read shader ${file}: ${(e as Error).message}`);
    });
    texts.set(file, t);
  }
  return t;
}

export type ShaderDefs = Record<string, number | boolean | { f32: number }>;

/** `const` declarations for the host-chosen sizes: integers as u32, `{f32: x}` as f32, booleans as bool. */
export function constHeader(defs: ShaderDefs): string {
  const lines: string[] = [];
  for (const [name, v] of Object.entries(defs)) {
    if (typeof v === "boolean") lines.push(`const ${name}: bool = ${v};`);
    else if (typeof v === "number") {
      if (!Number.isInteger(v) || v < 0) throw new Error(`shader constant ${name}=${v} is not a u32`);
      lines.push(`const ${name}: u32 = ${v}u;`);
    } else lines.push(`const ${name}: f32 = ${f32Literal(v.f32)};`);
  }
  return lines.join("\n") + "\n";
}

function f32Literal(x: number): string {
  const s = Math.fround(x).toPrecision(9);
  return /[.eE]/.test(s) ? s : s + ".0";
}
