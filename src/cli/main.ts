import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isMetalaError, MetalaError } from "../errors.js";
import { importOptional, PACKAGE_ROOT } from "./common.js";

/** Each command lives in ./<name>.js and exports main(args). */
const COMMANDS: Record<string, string> = {
  generate: `metala generate [--model DIR] (--prompt TEXT | --tokens 1,2,3) [--max-tokens N]
                [--temperature T --top-k K --top-p P --min-p M --repetition-penalty R --seed S]
                [--stop STR]... [--ignore-eos]
                [--device auto|reference|wasm|webgpu] [--prefill-device D --decode-device D]
                [--dtype f32|f16|q8|q4] [--threads N] [--json]
    Continue a prompt.`,
  eval: `metala eval [--model DIR] (--tokens 1,2,3 | --text TEXT | --file F)
            [--device reference|wasm|webgpu|auto]
            [--prefill-device D --decode-device D --prefill-tokens N]
            [--dtype f32|f16|q8|q4] [--threads N] [--chunk-tokens N]
            [--dump-logits OUT.json] [--json]
    Log-likelihood of a token sequence: mean negative log-likelihood (nats per
    token) and perplexity. --prefill-tokens N runs the first N tokens through
    the parallel prefill on --prefill-device and the rest one step at a time on
    --decode-device, handing the recurrent state over between them. Prefill
    runs in chunks of --chunk-tokens (default: up to 1024, fewer for large
    vocabularies) carrying the state, so memory does not grow with the input.`,
  bench: `metala bench [--model DIR | --preset NAME] [--device ...] [--dtype ...]
             [--threads N] [--prompt-tokens 512] [--decode-tokens 64] [--repeats 3] [--json]
    Prefill (the fastest of --repeats runs after a warm-up of the same length)
    and decode speed, weight bytes per token, memory bandwidth.`,
  mqar: `metala mqar ...
    Multi-query associative recall (the paper's synthetic task); see metala mqar --help.`,
  info: `metala info [--model DIR | --preset NAME] [--json]
    Config, parameter count, storage, tokenizer, recurrent state size, and the
    engines this machine can run.`,
};

function usage(): string {
  return [
    "metala: run MetaLA (Meta Linear Attention) language models on WebAssembly and WebGPU",
    "",
    "usage: metala <command> [flags]     metala <command> --help     metala --version",
    "",
    ...Object.values(COMMANDS).map((u) => u + "\n"),
    "--model defaults to the embedded model (models/metala-brown in the package).",
  ].join("\n");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

async function run(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === undefined) throw new MetalaError("usage", "no command given; run metala --help for the list");
  if (command === "--help" || command === "-h" || command === "help") return void process.stdout.write(usage() + "\n");
  if (command === "--version" || command === "-V") return void process.stdout.write(version() + "\n");
  if (!Object.hasOwn(COMMANDS, command))
    throw new MetalaError("usage", `unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(", ")}`);
  // mqar documents its own flags; every other command's usage is here
  if (command !== "mqar" && (args.includes("--help") || args.includes("-h"))) return void process.stdout.write(COMMANDS[command] + "\n");
  const mod = await importOptional<{ main?: (args: string[]) => Promise<void> }>(`./${command}.js`);
  if (typeof mod?.main !== "function") throw new MetalaError("usage", `command "${command}" is not available in this build`);
  await mod.main(args);
}

/** Runs one command line; user errors end in one line and exit 1 or 2, anything else is a bug (exit 70, with its stack). */
export async function main(argv: string[]): Promise<void> {
  let code = 0;
  try {
    // the CLI owns its process: the relaxed-SIMD kernels wherever this Node has them, if only behind a flag
    await (await importOptional<{ allowRelaxedSimd?: () => Promise<boolean> }>("../cpu/features.js"))?.allowRelaxedSimd?.();
    await run(argv);
  } catch (e) {
    if (isMetalaError(e)) {
      process.stderr.write(`metala: ${e.message.split("\n")[0]}\n`);
      code = e.exitCode;
    } else {
      process.stderr.write(`metala: internal error (a bug; please report it):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      code = 70;
    }
  }
  // Engines may hold worker threads or a GPU device open: end the process
  // once what was written has reached the OS.
  await new Promise<void>((done) => process.stdout.write("", () => done()));
  process.exit(code);
}
