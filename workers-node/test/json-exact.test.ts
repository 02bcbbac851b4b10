/**
 * The exact JSON parser (src/codecs/json-parse.ts) against `JSON.parse`, the reference for
 * syntax: on random JSON texts and random mutations of them, both accept or both reject, and
 * where both accept and `JSON.parse` is exact (no integer beyond 2^53, no `-0`, no lone
 * surrogate), they give the same value. Seeded: a failure names its seed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Random, randomValue } from "./helpers/random.js";

interface ParserModule {
  parseJsonExact(text: string): { value: unknown; floatId: boolean };
  JsonParseError: new (...args: never[]) => Error & { syntax: boolean };
}

const ITERATIONS = 3000;

/** A JSON text with every value `randomValue` makes that JSON has (binary and non-finite numbers as strings). */
function randomText(random: Random): string {
  const value = randomValue(random, 4, { leadingBom: false });
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === "bigint") return Number(item);
    if (item instanceof Uint8Array) return "bin";
    if (typeof item === "number" && !Number.isFinite(item)) return "nonfinite";
    return item;
  });
  if (!random.chance(0.3)) return text;
  // Insignificant whitespace, exponents and escapes that JSON.stringify never writes.
  return text.replace(/,/g, random.pick([", ", " ,\t", "\n,"])).replace(/"a/g, '"\\u0061').replace(/1\b/g, random.pick(["1", "1e0", "10E-1"]));
}

function mutate(random: Random, text: string): string {
  const at = random.int(0, text.length);
  switch (random.int(0, 3)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + random.pick(["{", "}", "[", "]", ",", ":", '"', "\\", "0", "-", ".", "e", " ", "\u0001", "tru", "nul"]) + text.slice(at);
    case 2:
      return text.slice(0, at);
    default:
      return `${text}${random.pick(["", " ", "x", "]", "\n"])}`;
  }
}

/** Whether `JSON.parse`'s value is exact for `text` (see the module comment). */
function parseIsExact(text: string): boolean {
  return !/[0-9]{16}|-0(?![.eE0-9])|\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{3}/.test(text);
}

test("the exact JSON parser agrees with JSON.parse on syntax, and on values where JSON.parse is exact", async () => {
  const { parseJsonExact, JsonParseError } = (await import(new URL("../codecs/json-parse.js", import.meta.url).href)) as ParserModule;
  for (let seed = 1; seed <= ITERATIONS; seed++) {
    const random = new Random(seed);
    const valid = randomText(random);
    const text = random.chance(0.5) ? valid : mutate(random, valid);
    let reference: { value: unknown } | { error: unknown };
    try {
      reference = { value: JSON.parse(text) as unknown };
    } catch (error) {
      reference = { error };
    }
    let exact: { value: unknown } | { error: Error & { syntax: boolean } };
    try {
      exact = { value: parseJsonExact(text).value };
    } catch (error) {
      assert.ok(error instanceof JsonParseError, `seed ${seed}: ${String(error)}`);
      exact = { error };
    }
    if ("error" in reference) {
      assert.ok("error" in exact && exact.error.syntax, `seed ${seed}: JSON.parse rejects ${JSON.stringify(text)}, the exact parser does not`);
    } else if ("error" in exact) {
      // Accepted by JSON.parse, refused here: only for content JSON.parse cannot judge.
      assert.ok(!exact.error.syntax && !parseIsExact(text), `seed ${seed}: ${exact.error.message} for ${JSON.stringify(text)}`);
    } else if (parseIsExact(text)) {
      assert.deepEqual(exact.value, reference.value, `seed ${seed}: ${JSON.stringify(text)}`);
    }
  }
});
