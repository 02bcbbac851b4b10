/**
 * Reading spec/vectors: the files, and their tagged values (spec/vectors/README.md) turned into
 * JavaScript values: `{"$int": "..."}` -> number when safe, else bigint; `{"$float": x}` -> number;
 * `{"$bin": "hex"}` -> Uint8Array.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { ClassifiedMessage } from "@aspect-ipc/worker";

/** spec/vectors, from dist/test/helpers/. */
export const VECTORS_DIRECTORY = fileURLToPath(new URL("../../../../spec/vectors/", import.meta.url));

/** Parses one vector file. */
export function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(`${VECTORS_DIRECTORY}${name}`, "utf8")) as T;
}

/** Hex to bytes. */
export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Bytes to lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** A tagged vector value as the JavaScript value the SDK uses. */
export function untag(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untag);
  if (value !== null && typeof value === "object") {
    const map = value as Record<string, unknown>;
    const keys = Object.keys(map);
    if (keys.length === 1 && keys[0] === "$int") {
      const big = BigInt(map.$int as string);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    if (keys.length === 1 && keys[0] === "$float") {
      const float = map.$float;
      return typeof float === "string" ? Number(float) : (float as number);
    }
    if (keys.length === 1 && keys[0] === "$bin") return fromHex(map.$bin as string);
    const result: Record<string, unknown> = {};
    // defineProperty: a "__proto__" key is an own member, as the SDK's decoders make it.
    for (const key of keys) Object.defineProperty(result, key, { value: untag(map[key]), writable: true, enumerable: true, configurable: true });
    return result;
  }
  return value;
}

/**
 * Structural equality as the vectors define it: numbers by value (NaN equals NaN, -0 only -0;
 * JavaScript cannot tell 1.0 from 1), bigints by value and never equal to a number, binary by
 * bytes, maps regardless of key order.
 */
export function sameValue(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "number") return typeof actual === "number" && Object.is(actual, expected);
  if (typeof expected === "bigint") return typeof actual === "bigint" && actual === expected;
  if (expected instanceof Uint8Array) {
    return actual instanceof Uint8Array && Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0;
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, index) => sameValue(actual[index], item));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual) || actual instanceof Uint8Array) return false;
    const expectedMap = expected as Record<string, unknown>;
    const actualMap = actual as Record<string, unknown>;
    const keys = Object.keys(expectedMap);
    return (
      keys.length === Object.keys(actualMap).length &&
      keys.every((key) => Object.prototype.hasOwnProperty.call(actualMap, key) && sameValue(actualMap[key], expectedMap[key]))
    );
  }
  return actual === expected;
}

/** A printable form of a value with bigints and bytes, for assertion messages. */
export function show(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === "bigint") return `${item}n`;
    if (item instanceof Uint8Array) return `<bin ${toHex(item)}>`;
    if (typeof item === "number" && (!Number.isFinite(item) || Object.is(item, -0))) return Object.is(item, -0) ? "-0" : String(item);
    return item;
  });
}

/** Whether a tagged vector value is a float tag (`{"$float": ...}`): a float the untagged number cannot show. */
export function isFloatTag(value: unknown): boolean {
  return value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1 && "$float" in value;
}

/** A classification in the vectors' shape. */
export function asVector(message: ClassifiedMessage): Record<string, unknown> {
  switch (message.kind) {
    case "request":
      return { kind: message.kind, id: message.id, method: message.method, ...(message.params === undefined ? {} : { params: message.params }) };
    case "notification":
      return { kind: message.kind, method: message.method, ...(message.params === undefined ? {} : { params: message.params }) };
    case "response":
      return { kind: message.kind, id: message.id, result: message.result };
    case "error_response":
      return { kind: message.kind, id: message.id, code: message.code, message: message.message, ...(message.hasData ? { data: message.data } : {}) };
    case "invalid":
      return { kind: message.kind, code: message.code, id: message.id, reply: message.reply };
  }
}

