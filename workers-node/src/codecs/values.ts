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
 * `undefined` object members are OMITTED, as `JSON.stringify` does, because that is what a
 * JavaScript programmer writing `{a: maybe}` expects; `undefined` in an array has no such reading
 * (JSON would write `null`) and is an error.
 */
import { MAX_NESTING_DEPTH } from "../constants.js";
import { CodecError } from "../errors.js";

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
  /** Whether `Uint8Array` is allowed (MessagePack bin). */
  readonly binary: boolean;
  /** Whether NaN and ±Infinity are allowed. */
  readonly nonFinite: boolean;
  readonly integers: IntegerPolicy;
}

/**
 * Checks `value` against the policy and returns the value to hand to the encoder: `value` itself
 * when nothing needs rewriting, otherwise a copy of the parts that changed.
 * @throws {CodecError} naming the type and the path of the first unrepresentable value.
 */
export function prepareValue(value: unknown, policy: ValuePolicy, found?: { exactNumbers: boolean }): unknown {
  if (value === undefined) {
    throw new CodecError(`cannot encode undefined as a ${policy.codec} value (use null)`);
  }
  const walker = new ValueWalker(policy);
  const prepared = walker.walk(value, 0);
  if (found !== undefined) found.exactNumbers = walker.exactNumbers;
  return prepared;
}

class ValueWalker {
  private readonly path: Array<string | number> = [];
  private readonly ancestors = new Set<object>();
  /** Whether the value holds a bigint, a -0 or an integral number beyond 2^53 (JSON.stringify would write them wrong). */
  exactNumbers = false;

  constructor(private readonly policy: ValuePolicy) {}

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
        return this.fail(`a function (${value.name || "anonymous"})`);
      default:
        return this.fail(`a ${typeof value}`);
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
      return this.fail(`the integer ${value}`, "outside [-2^63, 2^64 - 1], the integer range of aspect-ipc");
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
        this.fail(
          `binary data (${value.constructor.name} of ${value.byteLength} bytes)`,
          "binary has no JSON form; send it on the data channel, or encode the bytes as a string first",
        );
      }
      return value;
    }
    if (depth >= MAX_NESTING_DEPTH) this.fail(`nesting deeper than ${MAX_NESTING_DEPTH} levels`);
    if (this.ancestors.has(value)) this.fail("a circular reference");
    if (Array.isArray(value)) return this.guard(value, () => this.array(value, depth));
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      this.fail(describeObject(value), `only plain objects, arrays${this.policy.binary ? ", Uint8Array" : ""} and primitives can be sent`);
    }
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

  private fail(what: string, hint?: string): never {
    const where = formatPath(this.path);
    throw new CodecError(`cannot encode ${what} at ${where} as ${this.policy.codec}${hint === undefined ? "" : `: ${hint}`}`);
  }
}

function describeObject(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === "string" && name !== "") return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
  return `an object of type ${Object.prototype.toString.call(value)}`;
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
