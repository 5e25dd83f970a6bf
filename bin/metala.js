#!/usr/bin/env node
// The `metala` command. The CLI itself is compiled TypeScript in dist/.
let cli;
try {
  cli = await import("../dist/cli/main.js");
} catch (e) {
  if (e?.code !== "ERR_MODULE_NOT_FOUND" || !String(e.url ?? e.message).includes("dist/cli/main.js")) throw e;
  process.stderr.write("metala: this checkout is not built yet: run npm run build\n");
  process.exit(1);
}
await cli.main(process.argv.slice(2));
