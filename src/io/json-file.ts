import { MetalaError } from "../errors.js";

/** Parses a JSON file's text; a syntax error becomes one line naming the file. */
export function parseJsonText(text: string, label: string): unknown {
  try {
    // Editors on Windows may save a byte-order mark, which JSON.parse refuses.
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new MetalaError("format", `${label}: not valid JSON (${oneLine(e instanceof Error ? e.message : String(e))})`);
  }
}

/**
 * A JSON value shown in an error message: short, one line, and safe for any
 * parsed input (JSON.stringify overflows the stack on deeply nested lists,
 * and a multi-megabyte string has no place in a message).
 */
export function describeJson(value: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = Array.isArray(value) ? "a deeply nested list" : "a deeply nested object";
  }
  return s.length > max ? s.slice(0, max - 3) + "..." : s;
}

/** V8's JSON errors quote the offending text, newlines included; a message must stay one short line. */
export function oneLine(message: string, max = 200): string {
  const s = message.replace(/\s+/g, " ").trim();
  return s.length > max ? s.slice(0, max - 3) + "..." : s;
}
