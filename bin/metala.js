#!/usr/bin/env node
// The `metala` command: the compiled CLI lives in dist/ (npm run build).
import { main } from "../dist/cli/main.js";

await main(process.argv.slice(2));
