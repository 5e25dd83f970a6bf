/**
 * The one error type a user can cause. The CLI prints `metala: <message>` and
 * exits with `exitCode` for these; anything else is a bug and keeps its stack.
 */
export type ErrorKind =
  | "usage" // bad flag or argument (exit 2)
  | "io" // missing/unreadable file, failed fetch
  | "format" // malformed safetensors, JSON, tokenizer, snapshot
  | "config" // config.json values that make no model
  | "weights" // missing tensor, wrong shape
  | "input" // bad token id, empty prompt
  | "device" // engine unavailable or lost
  | "aborted";

export class MetalaError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MetalaError";
    this.kind = kind;
  }
  get exitCode(): 1 | 2 {
    return this.kind === "usage" ? 2 : 1;
  }
}

export function isMetalaError(e: unknown): e is MetalaError {
  return e instanceof MetalaError;
}
