/**
 * The Node.js test worker of the integration suite (integration-tests/WORKERS.md), built only from
 * the public API of @aspect-ipc/worker.
 */
import { execFile, spawn } from "node:child_process";
import { writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { ErrorCodes, MessagePackCodec, RemoteError, Worker, type RequestContext, type WorkerEndpoint } from "@aspect-ipc/worker";

// ---- environment switches, read before the SDK starts -------------------------------------------

if (process.env.TEST_IGNORE_SIGTERM === "1") {
  // A handler of the program's own: the SDK leaves SIGTERM alone from then on.
  process.on("SIGTERM", () => undefined);
}
const junk = process.env.TEST_JUNK_STDOUT;
if (junk !== undefined) writeSync(1, `${junk}\n`);

const exitBeforeReady = process.env.TEST_EXIT_BEFORE_READY;
if (exitBeforeReady !== undefined) {
  process.stderr.write("exiting early\n");
  process.exit(Number(exitBeforeReady));
}

if (process.env.TEST_NO_READY === "1") {
  process.stderr.write("not starting\n");
  process.stdin.on("data", () => undefined);
  process.stdin.on("end", () => process.exit(0));
} else {
  await main();
}

// ---- the worker ------------------------------------------------------------------------------

async function main(): Promise<void> {
  // The data codec's decode hook reads the numpy recipe's arrays (sumArray).
  const worker = new Worker({ dataCodec: new MessagePackCodec({ decodeHook: ndarrayHook }) });
  const via = (name: unknown): WorkerEndpoint => (name === "data" ? worker.data : worker.control);

  worker.onRequest("echo", (params: unknown) => params ?? null);

  worker.onRequest("add", (params: unknown) => {
    const a = member(params, "add", "a", isNumber, "a number");
    const b = member(params, "add", "b", isNumber, "a number");
    if (isInteger(a) && isInteger(b)) {
      // Exact, whatever the size: never rounded through a float, never wrapped.
      const sum = BigInt(a) + BigInt(b);
      if (sum < -(2n ** 63n) || sum > 2n ** 63n - 1n) throw invalid("add: integer overflow: a + b is outside [-2^63, 2^63 - 1]");
      return sum >= BigInt(Number.MIN_SAFE_INTEGER) && sum <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(sum) : sum;
    }
    return Number(a) + Number(b);
  });

  worker.onRequest("sleep", async (params: unknown, { signal }: RequestContext) => {
    const seconds = member(params, "sleep", "seconds", isNumber, "a number of seconds");
    const tag = (params as { tag?: unknown }).tag;
    try {
      await sleep(Number(seconds) * 1000, undefined, { signal });
    } catch (error) {
      if (signal.aborted) {
        await worker.control.notify("cancelObserved", { tag }).catch(() => undefined);
      }
      throw error;
    }
    return "done";
  });

  worker.onRequest("fail", (params: unknown) => {
    let message = member(params, "fail", "message", isString, "a string");
    const { code, data, notUnicode } = params as { code?: unknown; data?: unknown; notUnicode?: unknown };
    // A lone surrogate, which no codec sends: the SDK answers with U+FFFD in its place (PROTOCOL.md 4.10).
    if (notUnicode === true) message += " " + "😀".slice(0, 1);
    if (code === undefined) throw new Error(message);
    throw new RemoteError(Number(member(params, "fail", "code", isInteger, "an integer")), message, data);
  });

  worker.onRequest("crash", (params: unknown) => {
    const code = Number(member(params, "crash", "code", isInteger, "an integer exit code"));
    // At once, no clean-up: the 'exit' handlers (the SDK's socket removal) do not run.
    process.removeAllListeners("exit");
    process.exit(code);
  });

  worker.onRequest("callParent", (params: unknown) => {
    const method = member(params, "callParent", "method", isString, "a method name");
    const { params: inner, via: channel } = params as { params?: unknown; via?: unknown };
    return via(channel).request(method, inner ?? undefined);
  });

  worker.onRequest("notifyParent", async (params: unknown) => {
    const method = member(params, "notifyParent", "method", isString, "a method name");
    const { params: inner, via: channel } = params as { params?: unknown; via?: unknown };
    await via(channel).notify(method, inner ?? undefined);
    return null;
  });

  worker.onRequest("print", (params: unknown) => {
    console.log(member(params, "print", "text", isString, "a string"));
    return null;
  });

  worker.onRequest("childPrint", (params: unknown) => {
    // A child that inherits the worker's stdout (descriptor 1) writes the text, with no newline.
    const text = member(params, "childPrint", "text", isString, "a string");
    return new Promise<null>((resolve, reject) => {
      const child = spawn("printf", ["%s", text], { stdio: "inherit" });
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve(null) : reject(new Error(`printf exited with ${code}`))));
    });
  });

  worker.onRequest("childStdin", (params: unknown) => {
    // Runs argv as a child that inherits the worker's stdin (descriptor 0); answers its stdout.
    const argv = member(params, "childStdin", "argv", Array.isArray, "an array of strings") as unknown[];
    if (argv.length === 0 || !argv.every(isString)) throw invalid("childStdin: 'argv' must be a non-empty array of strings");
    const [program, ...rest] = argv as string[];
    return new Promise<string>((resolve, reject) => {
      const child = spawn(program as string, rest, { stdio: ["inherit", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${program} exited with ${code}`))));
    });
  });

  worker.onRequest("stderr", (params: unknown) => {
    process.stderr.write(`${member(params, "stderr", "text", isString, "a string")}\n`);
    return null;
  });

  worker.onRequest("getEnv", (params: unknown) => process.env[member(params, "getEnv", "name", isString, "a variable name")] ?? null);

  worker.onRequest("childEnv", (params: unknown) => childEnv(member(params, "childEnv", "name", isString, "a variable name")));

  worker.onRequest("freeze", () => {
    // Blocks the only thread: nothing is read or answered any more, $/shutdown included.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return null;
  });

  worker.onRequest("info", () => ({ language: "node", pid: process.pid }));

  worker.onRequest("spin", (params: unknown) => {
    // Keeps the CPU, and with it the event loop, busy for that long.
    const microseconds = Number(member(params, "spin", "microseconds", isInteger, "an integer number of microseconds"));
    const end = process.hrtime.bigint() + BigInt(microseconds) * 1000n;
    while (process.hrtime.bigint() < end) {
      // busy
    }
    return { pid: process.pid };
  });

  worker.onRequest("spawnChild", (params: unknown) => {
    const seconds = member(params, "spawnChild", "seconds", isNumber, "a number of seconds");
    // In the worker's own process group (no `detached`), with nothing on its stdio.
    const child = spawn("sleep", [String(seconds)], { stdio: "ignore" });
    child.on("error", () => undefined);
    return { pid: child.pid ?? null };
  });

  worker.onRequest("sleepStubborn", async (params: unknown) => {
    // Waits without blocking the event loop, never looking at its abort signal.
    const seconds = member(params, "sleepStubborn", "seconds", isNumber, "a number of seconds");
    await sleep(Number(seconds) * 1000);
    return "done";
  });

  worker.onRequest("sleepBusy", (params: unknown) => {
    // Sleeps synchronously: the event loop is blocked and the handler never sees a cancellation.
    const seconds = member(params, "sleepBusy", "seconds", isNumber, "a number of seconds");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(seconds) * 1000);
    return "done";
  });

  worker.onRequest("processItems", (params: unknown) => {
    const items = member(params, "processItems", "items", Array.isArray, "an array of {id, value} maps") as unknown[];
    let sum = 0;
    for (const [index, item] of items.entries()) {
      const value = (item as { value?: unknown } | null)?.value;
      if (typeof value !== "number") throw invalid(`processItems: items[${index}] must be a map with a number "value"`);
      sum += value; // in order, float64: the same bits in every language
    }
    return { processed: items.length, sum };
  });

  worker.onRequest("processMatrix", (params: unknown) => {
    const matrix = member(params, "processMatrix", "matrix", Array.isArray, "an array of arrays of numbers") as unknown[];
    const rows = matrix.length;
    const first = matrix[0];
    const columns = rows > 0 && Array.isArray(first) ? first.length : 0;
    if (rows * columns === 0) {
      throw new RemoteError(ErrorCodes.InvalidParams, "Invalid params: matrix is empty");
    }
    let sum = 0;
    for (const row of matrix) {
      if (!Array.isArray(row)) throw invalid("processMatrix: every row must be an array of numbers");
      for (const value of row) sum += Number(value); // row by row, in order
    }
    return { sum, avg: sum / (rows * columns) };
  });

  // Data only: JSON has no binary, so on control the method does not exist (-32601).
  worker.data.onRequest("sumArray", (params: unknown) => {
    const given = isMap(params) ? params.array : undefined;
    // The hook converted every well-formed array; anything else says what is wrong with it.
    const { array, problem } = given instanceof Float64Array ? { array: given } : float64Array(given);
    if (array === undefined) throw invalid(`sumArray: ${problem}`);
    let sum = 0.0;
    for (let index = 0; index < array.length; index++) sum += array[index] as number; // in index order, float64
    return { sum, count: array.length };
  });

  // Notification order (PROTOCOL.md 4.5): `note` records, `notes` reads, one list per channel.
  // Each note waits delayMs before recording: run one at a time, the records come out in arrival
  // order; run concurrently, the shorter waits would record first.
  for (const [name, endpoint] of [["control", worker.control], ["data", worker.data]] as const) {
    const notes: unknown[] = [];
    endpoint.onNotification("note", async (params: unknown) => {
      if (params === null || typeof params !== "object" || !Object.prototype.hasOwnProperty.call(params, "value")) {
        throw invalid(`note (${name}): "value" must be present (any value)`);
      }
      const delayMs = Number(member(params, "note", "delayMs", isInteger, "an integer number of milliseconds"));
      await sleep(delayMs);
      notes.push((params as { value: unknown }).value);
    });
    endpoint.onRequest("notes", () => [...notes]);
  }

  // Streams (PROTOCOL.md 13): an async generator is an output stream, context.input an input stream.
  for (const [name, endpoint] of [["control", worker.control], ["data", worker.data]] as const) {
    endpoint.onRequest("countTo", async function* (params: unknown, { signal }: RequestContext) {
      const n = Number(member(params, "countTo", "n", isInteger, "an integer ≥ 0"));
      const size = Number(member(params, "countTo", "size", isInteger, "0 or an integer ≥ 8"));
      const tag = (params as { tag?: unknown }).tag;
      if (n < 0) throw invalid(`countTo: "n" must be ≥ 0, got ${n}`);
      if (size < 0 || (size > 0 && size < 8)) throw invalid(`countTo: "size" must be 0 or ≥ 8, got ${size}`);
      if (size > 0 && name === "control") throw invalid("countTo: binary items (size > 0) travel on data only");
      try {
        for (let index = 0; index < n; index++) yield size === 0 ? index : countItem(index, size);
      } catch (error) {
        // A send raised: cancelled while sending or waiting for credit.
        if (signal.aborted && typeof tag === "string") await worker.control.notify("cancelObserved", { tag }).catch(() => undefined);
        throw error;
      }
      return { count: n };
    });

    endpoint.onRequest("sumStream", async (params: unknown, context: RequestContext) => {
      if (params !== undefined && (params === null || typeof params !== "object" || Object.keys(params).length > 0)) {
        throw invalid("sumStream: expected {} (no member besides $/stream)");
      }
      // Both sums as the items come: exact while all are integers, float64 from 0.0 in arrival order.
      let exact = 0n;
      let float = 0.0;
      let sawFloat = false;
      let index = 0;
      for await (const item of context.input) {
        if (!isNumber(item)) throw invalid(`item ${index} must be a number, got ${describe(item)}`);
        if (isInteger(item)) exact += BigInt(item);
        else sawFloat = true;
        float += Number(item);
        index++;
      }
      if (sawFloat) return float;
      if (exact < -(2n ** 63n) || exact > 2n ** 63n - 1n) throw invalid("sumStream: integer overflow: the sum is outside [-2^63, 2^63 - 1]");
      return exact >= BigInt(Number.MIN_SAFE_INTEGER) && exact <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(exact) : exact;
    });

    endpoint.onRequest("echoStream", async function* (_params: unknown, context: RequestContext) {
      let count = 0;
      // Each item is sent back (waiting for credit) before the next is read.
      for await (const item of context.input) {
        yield item;
        count++;
      }
      return { count };
    });
  }

  await worker.start();
}

// ---- the numpy recipe's arrays (docs/codec-hooks.md) ------------------------------------------

const ARRAY_SHAPE = 'a map {"__ndarray__": {"dtype": "<f8", "shape": [...], "data": bin}}';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The decode hook: a well-formed `{"__ndarray__": ...}` map becomes a Float64Array; every other map stays as it is. */
function ndarrayHook(map: Record<string, unknown>): unknown {
  if (map.__ndarray__ === undefined || Object.keys(map).length !== 1) return map; // the envelope, params...
  return float64Array(map).array ?? map;
}

/**
 * The float64 elements of an `__ndarray__` map of dtype "<f8" (C order, little-endian): a view of
 * the received bytes when they sit at a multiple of 8 in their buffer, else a copy. Otherwise
 * what is wrong, naming the first wrong member in the order of WORKERS.md.
 */
function float64Array(value: unknown): { array: Float64Array; problem?: undefined } | { array?: undefined; problem: string } {
  const inner = isMap(value) && Object.keys(value).length === 1 ? value.__ndarray__ : undefined;
  if (!isMap(inner)) return { problem: `'array' must be ${ARRAY_SHAPE}, got ${describe(value)}` };
  const { dtype, shape, data } = inner;
  if (dtype !== "<f8") return { problem: `'array.__ndarray__.dtype' must be "<f8", got ${typeof dtype === "string" ? JSON.stringify(dtype) : describe(dtype)}` };
  if (!Array.isArray(shape) || !shape.every((size) => isInteger(size) && size >= 0)) {
    return { problem: `'array.__ndarray__.shape' must be an array of integers >= 0, got ${describe(shape)}` };
  }
  const count = shape.reduce((product: bigint, size: number | bigint) => product * BigInt(size), 1n);
  if (!(data instanceof Uint8Array) || BigInt(data.byteLength) !== 8n * count) {
    const got = data instanceof Uint8Array ? `${data.byteLength} bytes` : describe(data);
    return { problem: `'array.__ndarray__.data' must be binary of 8 × product(shape) = ${8n * count} bytes, got ${got}` };
  }
  const length = data.byteLength / 8;
  if (!LITTLE_ENDIAN) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { array: Float64Array.from({ length }, (_, index) => view.getFloat64(index * 8, true)) };
  }
  if (data.byteOffset % 8 === 0) return { array: new Float64Array(data.buffer, data.byteOffset, length) };
  return { array: new Float64Array(data.slice().buffer, 0, length) };
}

function isMap(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array);
}

// ---- params -----------------------------------------------------------------------------------

function invalid(text: string): RemoteError {
  return new RemoteError(ErrorCodes.InvalidParams, `Invalid params: ${text}`);
}

/** `params[name]` if `check` accepts it, else -32602 naming the member and what was expected. */
function member<T>(params: unknown, method: string, name: string, check: (value: unknown) => value is T, what: string): T;
function member(params: unknown, method: string, name: string, check: (value: unknown) => boolean, what: string): unknown;
function member(params: unknown, method: string, name: string, check: (value: unknown) => boolean, what: string): unknown {
  if (params === null || typeof params !== "object" || Array.isArray(params) || params instanceof Uint8Array) {
    throw invalid(`${method}: expected a map with "${name}" (${what})`);
  }
  const map = params as Record<string, unknown>;
  const value = Object.prototype.hasOwnProperty.call(map, name) ? map[name] : undefined;
  if (!check(value)) {
    const got = value === undefined ? "nothing" : value === null ? "null" : value instanceof Uint8Array ? "binary" : Array.isArray(value) ? "an array" : typeof value;
    throw invalid(`${method}: "${name}" must be ${what}, got ${got}`);
  }
  return value;
}

/** A number: a JavaScript number (finite or not) or a bigint (an integer beyond 2^53). */
function isNumber(value: unknown): value is number | bigint {
  return typeof value === "number" || typeof value === "bigint";
}

/**
 * An integer: a bigint, or an integral number (JavaScript cannot tell 1.0 from 1 once decoded);
 * -0 is a float (integers have no sign of zero).
 */
function isInteger(value: unknown): value is number | bigint {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value) && !Object.is(value, -0));
}

/** Item `index` of countTo: `size` bytes, the index as a big-endian uint64, then zeros. */
function countItem(index: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(index));
  return bytes;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  return value === null ? "null" : value instanceof Uint8Array ? "binary" : Array.isArray(value) ? "an array" : typeof value;
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

function childEnv(name: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/env", [], { env: process.env }, (error, stdout) => {
      if (error) return reject(error);
      const prefix = `${name}=`;
      const line = stdout.split("\n").find((entry) => entry.startsWith(prefix));
      resolve(line === undefined ? null : line.slice(prefix.length));
    });
  });
}
