import * as assert from "uvu/assert";
import { MetalaError } from "../../dist/errors.js";

/**
 * Awaits fn and requires it to throw a one-line MetalaError of `kind` whose
 * message matches `mentions`: a RegExp, or strings it must all contain.
 * Returns the error.
 */
export async function rejects(fn, kind, mentions) {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, MetalaError, `expected a MetalaError, got ${e?.stack ?? e}`);
    assert.is(e.kind, kind, `kind of "${e.message}"`);
    if (mentions instanceof RegExp) assert.match(e.message, mentions);
    else for (const m of mentions) assert.ok(e.message.includes(m), `"${e.message}" should mention ${m}`);
    assert.not.ok(e.message.includes("\n"), "one line");
    return e;
  }
  assert.unreachable(`expected a ${kind} error mentioning ${mentions}`);
}
