import { MetalaError } from "../errors.js";

/** The one-line error for an HTTP response that is not what was asked for. */
export function httpStatusError(url: string, res: Response): MetalaError {
  return new MetalaError("io", `${url}: HTTP ${res.status}${res.statusText ? " " + res.statusText : ""}`);
}

/**
 * `res` when it is ok; undefined for a 404 of an `optional` file (a model
 * folder without an index, tokenizer files a model may lack); any other
 * status throws. The body of a response not returned is released.
 */
export async function okOrMissing(url: string, res: Response, optional: boolean): Promise<Response | undefined> {
  if (res.ok) return res;
  await res.body?.cancel();
  if (res.status === 404 && optional) return undefined;
  throw httpStatusError(url, res);
}
