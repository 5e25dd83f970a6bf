import { parseArgs, type ParseArgsConfig } from "node:util";
import { MetalaError } from "../errors.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * node:util parseArgs, strict, with its errors turned into one usage line
 * (exit 2) instead of a Node stack trace.
 */
export function parseFlags<O extends Options>(args: string[], options: O, command: string): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    // "--max-tokens -3": parseArgs takes -3 for a flag and calls the value ambiguous; its hint is on a later line
    const dashed = /^Option '(--[\w-]+)[^']*' argument is ambiguous/.exec(msg);
    if (dashed) throw new MetalaError("usage", `${command}: ${dashed[1]} is followed by a word starting with "-"; a value starting with "-" is written ${dashed[1]}=VALUE`);
    throw new MetalaError("usage", `${command}: ${msg}`);
  }
}

/** A flag that must be an integer in [min, max]. */
export function intFlag(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new MetalaError("usage", `--${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** A flag that must be a finite number in [min, max]. */
export function numberFlag(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max)
    throw new MetalaError("usage", `--${flag} must be a number from ${min} to ${max}, got "${value}"`);
  return n;
}

/** A flag that must be one of a fixed set of words. */
export function choiceFlag<T extends string>(value: string | undefined, flag: string, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value))
    throw new MetalaError("usage", `--${flag} must be one of ${choices.join(", ")}, got "${value}"`);
  return value as T;
}

/** A flag that must be token counts (integers >= 1) separated by commas. */
export function tokenCountsFlag(value: string | undefined, flag: string, fallback: string): number[] {
  const text = value ?? fallback;
  const counts = text.split(",").map(Number);
  if (counts.some((v) => !Number.isInteger(v) || v < 1)) throw new MetalaError("usage", `--${flag}: expected token counts separated by commas, got "${text}"`);
  return counts;
}
