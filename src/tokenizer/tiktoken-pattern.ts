import { MetalaError } from "../errors.js";

/**
 * cl100k_base's pre-tokenization pattern, in JavaScript syntax (its
 * case-insensitive contraction group spelled out). The fallback for a
 * tiktoken vocabulary whose folder names no pattern: the released MetaLA
 * vocabulary is described as cl100k-style.
 */
export const CL100K_PATTERN = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

const isLetter = (c: string | undefined) => c !== undefined && /^[A-Za-z]$/.test(c);
const bothCases = (c: string) => c.toLowerCase() + c.toUpperCase();

/**
 * Rewrites a tiktoken pattern written for Python's `regex` module into one
 * that JavaScript's RegExp (u flag) accepts, for the constructs tokenizer
 * patterns use: inline case-insensitive groups `(?i:...)` (ASCII letters are
 * expanded to both cases), atomic groups `(?>...)` and possessive quantifiers
 * (`++`, `*+`, `?+`, `}+`), taken as their ordinary forms. Those two differ
 * from the original only where backtracking into the group would change the
 * match, which tokenizer patterns are written to avoid.
 */
export function pythonPatternToJs(pattern: string): string {
  let out = "";
  let inClass = false;
  let depth = 0; // open groups
  const ciDepths: number[] = []; // depths at which (?i: groups were opened
  let afterQuantifier = false;

  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const ci = ciDepths.length > 0;
    if (c === "\\") {
      // copy the escape whole, \p{...} included
      let end = i + 2;
      if ((pattern[i + 1] === "p" || pattern[i + 1] === "P") && pattern[i + 2] === "{") end = pattern.indexOf("}", i) + 1 || pattern.length;
      out += pattern.slice(i, end);
      i = end - 1;
      afterQuantifier = false;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      if (ci && isLetter(c) && pattern[i + 1] === "-" && isLetter(pattern[i + 2])) {
        const hi = pattern[i + 2];
        out += `${c.toLowerCase()}-${hi.toLowerCase()}${c.toUpperCase()}-${hi.toUpperCase()}`;
        i += 2;
      } else out += ci && isLetter(c) ? bothCases(c) : c;
      continue;
    }
    if (c === "+" && afterQuantifier) {
      afterQuantifier = false; // possessive: drop the extra +
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      if (pattern[i + 1] === "^") out += pattern[++i];
      if (pattern[i + 1] === "]") out += pattern[++i]; // a leading ] is literal
      afterQuantifier = false;
      continue;
    }
    if (c === "(") {
      depth++;
      if (pattern.startsWith("(?i:", i)) {
        ciDepths.push(depth);
        out += "(?:";
        i += 3;
      } else if (pattern.startsWith("(?>", i)) {
        out += "(?:";
        i += 2;
      } else out += c;
      afterQuantifier = false;
      continue;
    }
    if (c === ")") {
      if (ciDepths[ciDepths.length - 1] === depth) ciDepths.pop();
      depth--;
      out += c;
      afterQuantifier = false;
      continue;
    }
    if (c === "{" && /^\{\d*(,\d*)?\}/.test(pattern.slice(i))) {
      const end = pattern.indexOf("}", i) + 1;
      out += pattern.slice(i, end);
      i = end - 1;
      afterQuantifier = true;
      continue;
    }
    afterQuantifier = c === "+" || c === "*" || (c === "?" && out[out.length - 1] !== "(");
    out += ci && isLetter(c) ? `[${bothCases(c)}]` : c;
  }
  return out;
}

/** The pattern as a JS source string that compiles, or a format error naming where it came from. */
export function checkedJsPattern(pattern: string, origin: string): string {
  const js = pythonPatternToJs(pattern);
  try {
    new RegExp(js, "u");
  } catch (e) {
    throw new MetalaError("format", `${origin}: the regex pattern does not compile in JavaScript (${e instanceof Error ? e.message : String(e)})`);
  }
  return js;
}
