/**
 * A seeded pseudo-random generator and random values of the data model, so that randomized tests
 * reproduce: the same seed gives the same inputs on every machine.
 */

/** mulberry32: 32 bits of state, good enough to pick test inputs, fully determined by the seed. */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }

  bytes(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) bytes[index] = this.int(0, 255);
    return bytes;
  }
}

const STRING_PIECES = ["a", "z", "0", " ", "\n", "é", "ß", "日", "😀", "\ufeff", "\u{10ffff}", "key", "jsonrpc"];

/** What random values may hold. */
export interface ValueOptions {
  /** Strings may start with U+FEFF (which some decoders wrongly drop as a byte-order mark). Default true. */
  leadingBom?: boolean;
}

function randomString(random: Random, options: ValueOptions): string {
  const length = random.pick([0, 1, 3, 8, 9, 20, 40, 300]);
  let text = "";
  while (text.length < length) text += random.pick(STRING_PIECES);
  return options.leadingBom === false && text.startsWith("\ufeff") ? `a${text}` : text;
}

function randomInteger(random: Random): number | bigint {
  switch (random.int(0, 5)) {
    case 0:
      return random.int(-40, 200);
    case 1:
      return random.int(-70_000, 70_000);
    case 2:
      return random.int(-(2 ** 31) - 5, 2 ** 32 + 5);
    case 3:
      return random.pick([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 40, -(2 ** 40) - 7]);
    case 4:
      return random.pick([2n ** 53n, -(2n ** 53n), 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n), 2n ** 60n + 3n]);
    default:
      return random.int(0, 1_000_000);
  }
}

/**
 * A random value of the MessagePack data model, nested at most `depth` deep: what the codec must
 * encode and decode to an equal value (no -0, whose sign an integer cannot keep; no "__proto__" key).
 */
export function randomValue(random: Random, depth: number, options: ValueOptions = {}): unknown {
  const kind = random.int(0, depth > 0 ? 9 : 6);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return randomInteger(random);
    case 3: {
      const float = random.pick([0.5, -1.25, 1e300, -1e-300, Number.NaN, Infinity, -Infinity, Math.PI]);
      return random.chance(0.5) ? float : (random.next() - 0.5) * 1e6 + 0.1;
    }
    case 4:
    case 5:
      return randomString(random, options);
    case 6:
      return random.bytes(random.pick([0, 1, 5, 300, 70_000]));
    case 7:
    case 8: {
      const length = random.pick([0, 1, 2, 5, 17]);
      return Array.from({ length }, () => randomValue(random, depth - 1, options));
    }
    default: {
      const map: Record<string, unknown> = {};
      const size = random.pick([0, 1, 3, 16]);
      for (let index = 0; index < size; index++) map[randomString(random, options)] = randomValue(random, depth - 1, options);
      return map;
    }
  }
}
