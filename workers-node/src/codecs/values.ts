/**
 * The data model both codecs carry (PROTOCOL.md section 3): null, boolean, number, string, array,
 * map with string keys, plus integers beyond 2^53 (`bigint`) and binary (`Uint8Array`) where the
 * codec can carry them.
 *
 * `prepareValue` walks a value before it is encoded and raises a {@link CodecError} naming the
 * offending type and where it sits, so that nothing the peer could not read back as the same value
 * is ever written: a `Date`, `Map`, `Set`, class instance, function, symbol, `undefined` inside an
 * array, a lone UTF-16 surrogate, a cycle. It also rewrites integers into the shape the encoder
 * needs (see {@link IntegerPolicy}); the caller's value is never modified, parts that change are
 * copied.
 *
 * With an encode hook (types.ts), a value of a type the codec does not carry is handed to the hook
 * and its replacement walked in its place, at the same path and depth.
 *
 * `undefined` object members are OMITTED, as `JSON.stringify` does, because that is what a
 * JavaScript programmer writing `{a: maybe}` expects; `undefined` in an array has no such reading
 * (JSON would write `null`) and is an error.
 */
import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError } from "../errors.js";
import { INTEGER_RANGE_ADVICE, conversionAdvice, declinedAdvice, describeHookError, describeObject } from "./advice.js";
import type { EncodeHook } from "./types.js";

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * How integers are rewritten for an encoder.
 * - `msgpack`: integers in [-2^31, 2^32) become numbers, other integers become bigints, so that an
 *   encoder writing bigints as int 64 / uint 64 produces the shortest form for every value; bigints
 *   outside [-2^63, 2^64 - 1] are errors.
 * - `json`: bigints within ±(2^53 - 1) become numbers; others within [-2^63, 2^64 - 1] stay
 *   bigints, written as their exact digits (decision D9); bigints outside are errors.
 */
export type IntegerPolicy = "msgpack" | "json";

/** What a codec accepts besides the JSON data model. */
export interface ValuePolicy {
  /** The codec's name, for messages ("JSON", "MessagePack"). */
  readonly codec: string;
  /** The codec's class, where advice says to pass an encode hook ("JsonCodec", "MessagePackCodec"). */
  readonly codecClass: string;
  /** Whether `Uint8Array` is allowed (MessagePack bin). */
  readonly binary: boolean;
  /** Whether NaN and ±Infinity are allowed. */
  readonly nonFinite: boolean;
  readonly integers: IntegerPolicy;
}

/** How many times the encode hook may be applied down one path before its result is refused. */
export const MAX_HOOK_APPLICATIONS = 64;

/** One call of an encode hook: what it was given, and what it returned or (`failed`) threw. */
export interface HookOutcome {
  readonly input: unknown;
  readonly output: unknown;
  readonly failed: boolean;
}

/**
 * The encode hook, and the outcomes of its calls in a walk that already happened (the encoder's
 * fast walk): replayed in order instead of calling the hook again for the same values.
 */
export interface HookReplay {
  readonly hook: EncodeHook;
  readonly outcomes?: readonly HookOutcome[] | null;
}

/**
 * Checks `value` against the policy and returns the value to hand to the encoder: `value` itself
 * when nothing needs rewriting, otherwise a copy of the parts that changed (hook replacements
 * included).
 * @throws {CodecError} naming the type, the path of the first unrepresentable value and what to do.
 */
export function prepareValue(value: unknown, policy: ValuePolicy, found?: { exactNumbers: boolean }, hooks?: HookReplay): unknown {
  if (value === undefined) {
    throw new CodecError(`cannot encode undefined as a ${policy.codec} value (use null)`, { path: "$" });
  }
  const walker = new ValueWalker(policy, hooks);
  const prepared = walker.walk(value, 0);
  if (found !== undefined) found.exactNumbers = walker.exactNumbers;
  return prepared;
}

class ValueWalker {
  private readonly path: Array<string | number> = [];
  private readonly ancestors = new Set<object>();
  /** Hook applications on the way to the value being walked. */
  private hookDepth = 0;
  private replayed = 0;
  /** Whether the value holds a bigint, a -0 or an integral number beyond 2^53 (JSON.stringify would write them wrong). */
  exactNumbers = false;

  constructor(
    private readonly policy: ValuePolicy,
    private readonly hooks: HookReplay | undefined,
  ) {}

  walk(value: unknown, depth: number): unknown {
    switch (typeof value) {
      case "string":
        if (!value.isWellFormed()) this.fail("a string with a lone UTF-16 surrogate", "it is not valid Unicode");
        return value;
      case "boolean":
        return value;
      case "number":
        return this.number(value);
      case "bigint":
        return this.bigint(value);
      case "object":
        if (value === null) return null;
        return this.object(value, depth);
      case "undefined":
        return this.fail("undefined inside an array", "use null");
      case "function":
        return this.refuse(value, depth, `a function (${value.name || "anonymous"})`);
      default:
        return this.refuse(value, depth, `a ${typeof value}`);
    }
  }

  private number(value: number): unknown {
    if (!Number.isFinite(value)) {
      if (!this.policy.nonFinite) {
        this.fail(String(value), `not representable in ${this.policy.codec}; send it on the data channel or as a string`);
      }
      return value;
    }
    if (this.policy.integers === "msgpack" && Number.isSafeInteger(value) && (value < -0x8000_0000 || value >= 0x1_0000_0000)) {
      return BigInt(value);
    }
    if (Object.is(value, -0) || (Number.isInteger(value) && !Number.isSafeInteger(value))) this.exactNumbers = true;
    return value;
  }

  private bigint(value: bigint): unknown {
    if (value < INT64_MIN || value > UINT64_MAX) {
      return this.fail(`the integer ${value}`, INTEGER_RANGE_ADVICE);
    }
    if (this.policy.integers === "json") {
      if (value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
      this.exactNumbers = true;
      return value;
    }
    if (value >= -0x8000_0000n && value < 0x1_0000_0000n) return Number(value);
    return value;
  }

  private object(value: object, depth: number): unknown {
    if (value instanceof Uint8Array) {
      if (!this.policy.binary) {
        return this.refuse(
          value,
          depth,
          `binary data (${value.constructor.name} of ${value.byteLength} bytes)`,
          `binary has no JSON form; send it on the data channel, or encode the bytes as a string first, or pass an encodeHook to ${this.policy.codecClass}`,
        );
      }
      return value;
    }
    if (depth >= MAX_NESTING_DEPTH) this.fail(`nesting deeper than ${MAX_NESTING_DEPTH} levels`);
    if (this.ancestors.has(value)) this.fail("a circular reference");
    if (Array.isArray(value)) return this.guard(value, () => this.array(value, depth));
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return this.refuse(value, depth, describeObject(value));
    return this.guard(value, () => this.map(value as Record<string, unknown>, depth));
  }

  private array(value: unknown[], depth: number): unknown[] {
    let copy: unknown[] | null = null;
    for (let index = 0; index < value.length; index++) {
      const item = value[index];
      this.path.push(index);
      const prepared = this.walk(item, depth + 1);
      this.path.pop();
      if (prepared !== item && copy === null) copy = value.slice(0, index);
      if (copy !== null) copy.push(prepared);
    }
    return copy ?? value;
  }

  private map(value: Record<string, unknown>, depth: number): Record<string, unknown> {
    let copy: Record<string, unknown> | null = null;
    const keys = Object.keys(value);
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index] as string;
      const item = value[key];
      if (!key.isWellFormed()) this.fail("a map key with a lone UTF-16 surrogate", "it is not valid Unicode");
      if (item === undefined) {
        // Omitted, like JSON.stringify does (see the module comment); the encoder skips it too.
        continue;
      }
      this.path.push(key);
      const prepared = this.walk(item, depth + 1);
      this.path.pop();
      if (prepared !== item && copy === null) {
        // Null prototype: a "__proto__" key (JSON.parse makes such own members) stays a plain member.
        copy = Object.create(null) as Record<string, unknown>;
        for (const earlier of keys.slice(0, index)) {
          if (value[earlier] !== undefined) copy[earlier] = value[earlier];
        }
      }
      if (copy !== null) copy[key] = prepared;
    }
    return copy ?? value;
  }

  private guard<T>(value: object, body: () => T): T {
    this.ancestors.add(value);
    try {
      return body();
    } finally {
      this.ancestors.delete(value);
    }
  }

  /**
   * A value of a type the codec does not carry: the encode hook's replacement, walked in its
   * place, or a CodecError with `advice` (by default the conversion for its type).
   */
  private refuse(value: unknown, depth: number, what: string, advice?: string): unknown {
    const hook = this.hooks?.hook;
    if (hook === undefined) return this.fail(what, advice ?? conversionAdvice(value, this.policy));
    // The messages of the other SDKs (docs/codec-hooks.md), with this codec's names.
    if (this.hookDepth >= MAX_HOOK_APPLICATIONS) {
      this.failWith(
        (where) =>
          `encode hook returned a value it cannot encode: ${what} at ${where} is still not a value the wire carries after ` +
          `${MAX_HOOK_APPLICATIONS} applications of the hook (return null, a boolean, number, string, ` +
          `${this.policy.binary ? "Uint8Array, " : ""}array or plain object)`,
      );
    }
    const outcome = this.applyHook(hook, value);
    if (outcome.failed) {
      const detail = describeHookError(outcome.output);
      this.failWith((where) => `encode hook failed on ${what} at ${where} (${this.policy.codec}): ${detail}`, outcome.output);
    }
    if (outcome.output === undefined) return this.fail(what, declinedAdvice(value, this.policy));
    this.hookDepth++;
    const prepared = this.walk(outcome.output, depth);
    this.hookDepth--;
    return prepared;
  }

  /** The recorded outcome of the fast walk for this value, else a call of the hook now. */
  private applyHook(hook: EncodeHook, value: unknown): HookOutcome {
    const outcomes = this.hooks?.outcomes;
    const recorded = outcomes?.[this.replayed];
    if (recorded !== undefined && recorded.input === value) {
      this.replayed++;
      return recorded;
    }
    try {
      return { input: value, output: hook(value), failed: false };
    } catch (error) {
      return { input: value, output: error, failed: true };
    }
  }

  private fail(what: string, hint?: string): never {
    this.failWith((where) => `cannot encode ${what} at ${where} as ${this.policy.codec}${hint === undefined ? "" : `: ${hint}`}`);
  }

  private failWith(message: (where: string) => string, cause?: unknown): never {
    const where = formatPath(this.path);
    throw new CodecError(message(where), cause === undefined ? { path: where } : { path: where, cause });
  }
}

/** `$`, `$.params.items[3]`, `$["odd key"]`. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let text = "$";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) text += `.${part}`;
    else text += `[${JSON.stringify(part)}]`;
  }
  return text;
}
