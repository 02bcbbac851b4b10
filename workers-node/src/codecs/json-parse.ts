/**
 * An exact JSON parser for the control channel (PROTOCOL.md 3.1, decisions D5, D6, D8-D11). Pure code.
 *
 * `JSON.parse` is fast but cannot do what the spec asks of a decoder: it rounds integers beyond
 * 2^53, passes lone surrogate escapes on, reads `-0` as the float -0, cannot say whether the `id`
 * token was `1` or `1.0`, and fails on deep nesting by exhausting the stack. `JsonCodec` therefore
 * uses `JSON.parse` only for lines where none of that can happen (see `needsExactParser`) and this
 * parser for the rest.
 *
 * Theory of operation: one iterative pass (an explicit stack of open containers, so any depth
 * costs heap, not stack). Syntax errors stop it at once. Errors of meaning (an integer outside
 * [-2^63, 2^64 - 1], a float that overflows, a lone surrogate, nesting deeper than 512) are
 * remembered, and parsing goes on to the end, so that the message's `id` can be recovered when
 * the top level is a map with a string `method` (D10): the caller answers `-32700` with that id.
 * The same pass notes an answer's id (a map without `method`, with `result` or `error`): its
 * caller fails the request it names instead of letting it wait for its timeout (4.8), and which of
 * the watched members of float-members.ts were float tokens, from the keys on its stack.
 */
import { MAX_NESTING_DEPTH } from "../constants.js";
import { noteMember, watchedErrorMember, watchedMember } from "./float-members.js";

/**
 * Why a line could not be decoded; `syntax` false means valid JSON whose content is refused. Then
 * `recoveredId` is a request's id (answered `-32700`), `answerId` an answer's (PROTOCOL.md 4.8).
 */
export class JsonParseError extends Error {
  constructor(
    message: string,
    readonly syntax: boolean,
    readonly recoveredId?: string | number | bigint,
    readonly answerId?: string | number | bigint,
  ) {
    super(message);
  }
}

/** A parsed message, and whether its top-level `id` member was a float token (D6). */
export interface ParsedJson {
  readonly value: unknown;
  readonly floatId: boolean;
  /** Which watched members were float tokens: bits of `FloatMember` (float-members.ts). */
  readonly floatMembers: number;
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

/**
 * Whether `JSON.parse` could get `text` wrong: a run of 16+ digits (an integer beyond 2^53), an
 * exponent of 3+ digits (a float that may overflow to Infinity), a surrogate escape, an escaped printable ASCII character (a key spelled `"\u0069d"`), a float
 * token as the value of an `"id"` member or of a member named like a watched member of
 * float-members.ts (wherever it is: the exact parser looks where), or `-0` as an integer. False
 * positives only cost speed.
 */
export function needsExactParser(text: string): boolean {
  return /[0-9]{16}|[eE][+-]?[0-9]{3}|\\u[dD][89a-fA-F]|\\u00[2-7]|"(?:id|code|stream|seq|add|window)"\s*:\s*-?[0-9]+[.eE]|-0(?![.eE0-9])/.test(text);
}

/** How deep `value` nests, counting containers (a container at the top is 1); stops past `limit`. */
export function nestingDepth(value: unknown, limit = MAX_NESTING_DEPTH): number {
  if (value === null || typeof value !== "object") return 0;
  if (limit <= 0) return 1;
  let deepest = 0;
  const items = Array.isArray(value) ? value : Object.values(value as object);
  for (const item of items) {
    const depth = nestingDepth(item, limit - 1);
    if (depth > deepest) deepest = depth;
    if (deepest >= limit) break;
  }
  return deepest + 1;
}

interface Container {
  readonly value: unknown[] | Record<string, unknown>;
  key: string | null;
}

/**
 * Parses one JSON text exactly.
 * @throws {JsonParseError} on a syntax error (`syntax` true, no id), or on refused content (with
 *   `recoveredId` when the top level is a map with a string `method` and a string or integer `id`,
 *   `answerId` when it is a map without `method`, with `result` or `error`, and such an `id`).
 */
export function parseJsonExact(text: string): ParsedJson {
  return new Parser(text).parse();
}

class Parser {
  private pos = 0;
  private problem: string | null = null;
  /** What the last scalar was, for the top-level `id` member. */
  private lastKind: "string" | "integer" | "float" | "other" = "other";
  /** Whether the last string held a refused (lone surrogate) escape: such an id or method recovers nothing. */
  private lastStringRefused = false;
  private floatId = false;
  private floatMembers = 0;
  private topId: { valid: boolean; value?: string | number | bigint } = { valid: false };
  private topMethod = false;
  /** Whether the top level has a `method` member at all, and a `result` or `error` member (an answer). */
  private topHasMethod = false;
  private topAnswer = false;

  constructor(private readonly text: string) {}

  parse(): ParsedJson {
    const stack: Container[] = [];
    this.space();
    let value: unknown;
    for (;;) {
      // A value is expected here.
      const code = this.text.charCodeAt(this.pos);
      if (code === 0x7b /* { */ || code === 0x5b /* [ */) {
        this.pos++;
        if (stack.length + 1 > MAX_NESTING_DEPTH) this.refuse(`nesting deeper than ${MAX_NESTING_DEPTH} levels at offset ${this.pos - 1}`);
        const container: Container = { value: code === 0x7b ? {} : [], key: null };
        stack.push(container);
        this.space();
        const close = code === 0x7b ? 0x7d : 0x5d;
        if (this.text.charCodeAt(this.pos) === close) {
          this.pos++;
          stack.pop();
          value = container.value;
          this.lastKind = "other";
        } else {
          if (code === 0x7b) this.memberKey(container);
          continue;
        }
      } else {
        value = this.scalar();
      }
      // A value is complete: put it in its container, and close every container that ends here.
      for (;;) {
        const container = stack[stack.length - 1];
        if (container === undefined) {
          this.space();
          if (this.pos !== this.text.length) this.fail("unexpected text after the JSON value");
          return this.finish(value);
        }
        if (Array.isArray(container.value)) {
          container.value.push(value);
        } else {
          this.setMember(container, value, stack);
        }
        this.space();
        const next = this.text.charCodeAt(this.pos);
        const close = Array.isArray(container.value) ? 0x5d : 0x7d;
        if (next === 0x2c /* , */) {
          this.pos++;
          this.space();
          if (!Array.isArray(container.value)) this.memberKey(container);
          break;
        }
        if (next !== close) this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
        this.pos++;
        stack.pop();
        value = container.value;
        this.lastKind = "other";
      }
    }
  }

  private finish(value: unknown): ParsedJson {
    if (this.problem === null) return { value, floatId: this.floatId, floatMembers: this.floatMembers };
    const isMap = value !== null && typeof value === "object" && !Array.isArray(value);
    const id = isMap && this.topId.valid ? this.topId.value : undefined;
    const recovered = this.topMethod ? id : undefined;
    const answer = !this.topHasMethod && this.topAnswer ? id : undefined;
    throw new JsonParseError(this.problem, false, recovered, answer);
  }

  /** Reads `"key" :` into the container. */
  private memberKey(container: Container): void {
    if (this.text.charCodeAt(this.pos) !== 0x22) this.fail("expected a string key");
    container.key = this.string();
    this.space();
    if (this.text.charCodeAt(this.pos) !== 0x3a /* : */) this.fail("expected ':'");
    this.pos++;
    this.space();
  }

  /** Sets the member of `container`, the innermost map on `stack`, whose value was just read. */
  private setMember(container: Container, value: unknown, stack: readonly Container[]): void {
    const map = container.value as Record<string, unknown>;
    const key = container.key as string;
    const depth = stack.length;
    if (depth === 1) {
      const clean = !(this.lastKind === "string" && this.lastStringRefused);
      if (key === "id") {
        this.floatId = this.lastKind === "float";
        const valid = (this.lastKind === "string" || this.lastKind === "integer") && clean;
        this.topId = valid ? { valid, value: value as string | number | bigint } : { valid: false };
      } else if (key === "method") {
        this.topMethod = this.lastKind === "string" && clean;
        this.topHasMethod = true;
      } else if (key === "result" || key === "error") {
        this.topAnswer = true; // present is enough: its value is not looked at
      }
    } else if (depth <= 4 && (this.lastKind === "float" || this.floatMembers !== 0)) {
      // Names compared only at a float, or once one was noted (a repeated key: its last occurrence
      // counts). Each open map's key on the stack is the member being read: the way to this one.
      const top = stack[0]?.key;
      const bit =
        top === "params" ? watchedMember(key, depth - 1, stack[1]?.key ?? null, stack[2]?.key ?? null) : top === "error" ? watchedErrorMember(key, depth - 1) : 0;
      this.floatMembers = noteMember(this.floatMembers, bit, this.lastKind === "float");
    }
    if (key === "__proto__") {
      Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
    } else {
      map[key] = value;
    }
  }

  private scalar(): unknown {
    const code = this.text.charCodeAt(this.pos);
    if (code === 0x22) {
      const problem = this.problem;
      this.problem = null;
      const text = this.string();
      this.lastStringRefused = this.problem !== null;
      if (problem !== null) this.problem = problem; // the first refusal is the one reported
      this.lastKind = "string";
      return text;
    }
    this.lastKind = "other";
    if (this.text.startsWith("true", this.pos)) return this.literal(4, true);
    if (this.text.startsWith("false", this.pos)) return this.literal(5, false);
    if (this.text.startsWith("null", this.pos)) return this.literal(4, null);
    return this.number();
  }

  private literal<T>(length: number, value: T): T {
    this.pos += length;
    return value;
  }

  private number(): number | bigint {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail("expected a JSON value");
    const token = match[0];
    const start = this.pos;
    this.pos += token.length;
    if (match[1] !== undefined || match[2] !== undefined) {
      this.lastKind = "float";
      const float = Number(token);
      if (!Number.isFinite(float)) this.refuse(`the number ${token.length > 40 ? `${token.slice(0, 40)}...` : token} at offset ${start} is too large for a float 64`);
      return float;
    }
    this.lastKind = "integer";
    const digits = token.length - (token.startsWith("-") ? 1 : 0);
    if (digits <= 15) return Number(token) + 0; // + 0 turns -0 into 0: an integer has no sign of zero.
    const big = BigInt(token);
    if (big < INT64_MIN || big > UINT64_MAX) {
      this.lastKind = "other";
      this.refuse(`the integer at offset ${start} (${digits} digits) is outside [-2^63, 2^64 - 1]`);
      return 0;
    }
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  /** Reads a string token; a lone surrogate escape is refused (D8), control characters are syntax errors. */
  private string(): string {
    const text = this.text;
    const start = ++this.pos;
    let end = start;
    // Fast path: no escape.
    for (;;) {
      const code = text.charCodeAt(end);
      if (Number.isNaN(code)) this.fail("unterminated string");
      if (code === 0x22) {
        this.pos = end + 1;
        return text.slice(start, end);
      }
      if (code === 0x5c) break;
      if (code < 0x20) this.fail(`control character U+${code.toString(16).padStart(4, "0")} inside a string`);
      end++;
    }
    let result = text.slice(start, end);
    let pos = end;
    for (;;) {
      const code = text.charCodeAt(pos);
      if (Number.isNaN(code)) this.fail("unterminated string");
      if (code === 0x22) {
        this.pos = pos + 1;
        return result;
      }
      if (code < 0x20) this.fail(`control character U+${code.toString(16).padStart(4, "0")} inside a string`);
      if (code !== 0x5c) {
        result += text[pos];
        pos++;
        continue;
      }
      const escape = text[pos + 1];
      pos += 2;
      switch (escape) {
        case '"':
        case "\\":
        case "/":
          result += escape;
          break;
        case "b":
          result += "\b";
          break;
        case "f":
          result += "\f";
          break;
        case "n":
          result += "\n";
          break;
        case "r":
          result += "\r";
          break;
        case "t":
          result += "\t";
          break;
        case "u": {
          const unit = this.hex(pos);
          pos += 4;
          if (unit >= 0xd800 && unit <= 0xdbff && text[pos] === "\\" && text[pos + 1] === "u") {
            const low = this.hex(pos + 2);
            if (low >= 0xdc00 && low <= 0xdfff) {
              result += String.fromCharCode(unit, low);
              pos += 6;
              break;
            }
          }
          if (unit >= 0xd800 && unit <= 0xdfff) {
            this.refuse(`lone surrogate \\u${unit.toString(16)} at offset ${pos - 6}: a string must be valid Unicode`);
          }
          result += String.fromCharCode(unit);
          break;
        }
        default:
          this.fail(`invalid escape at offset ${pos - 2}`);
      }
    }
  }

  private hex(at: number): number {
    const digits = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail(`invalid \\u escape at offset ${at - 2}`);
    return Number.parseInt(digits, 16);
  }

  private space(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const code = text.charCodeAt(pos);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  /** Remembers the first refusal; parsing goes on so that the id can be recovered. */
  private refuse(message: string): void {
    this.problem ??= message;
  }

  private fail(message: string): never {
    throw new JsonParseError(`${message} (offset ${this.pos})`, true);
  }
}
