import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MetalaError } from "../errors.js";
import { describeFsError } from "../io/node-file-source.js";
import { isTokenizerFileName, loadTokenizer } from "./load.js";
import type { Tokenizer, TokenizerFiles } from "./tokenizer.js";

/** Reads the tokenizer files of a model folder (Node only; browsers fetch them and call loadTokenizer). */
export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new MetalaError("io", `${dir}: cannot list the folder (${describeFsError(e)})`);
  }
  const files: Record<string, string> = {};
  for (const name of names.filter(isTokenizerFileName)) {
    try {
      files[name] = await readFile(join(dir, name), "utf8");
    } catch (e) {
      throw new MetalaError("io", `${join(dir, name)}: ${describeFsError(e)}`);
    }
  }
  return files;
}

export async function loadTokenizerFromDir(dir: string): Promise<Tokenizer> {
  return loadTokenizer(await readTokenizerFiles(dir), dir);
}
