/**
 * The test worker's `sumArray` (integration-tests/WORKERS.md) against the real process: its data
 * codec's decode hook turns the numpy recipe's `__ndarray__` map into a Float64Array, wherever the
 * bytes sit in the frame, and a 64 MiB array arrives through the data channel when the parent's
 * frame limit allows it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCodes, MessagePackCodec } from "@aspect-ipc/worker";

import { connectedWorker, type DataConnection } from "./helpers/parent.js";

type Message = Record<string, unknown>;

/** The recipe's wire shape of a float64 array (C order, little-endian: the host's order here). */
function ndarray(values: Float64Array, shape: unknown = [values.length], dtype: unknown = "<f8"): Message {
  return { __ndarray__: { dtype, shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) } };
}

function sequentialSum(values: Float64Array): number {
  let sum = 0.0;
  for (const value of values) sum += value;
  return sum;
}

async function sumArray(parent: DataConnection, id: string, params: unknown): Promise<Message> {
  parent.send({ jsonrpc: "2.0", id, method: "sumArray", params });
  return parent.waitFor((m) => m.id === id && ("result" in m || "error" in m), `sumArray ${id}`, 60_000);
}

test("sumArray adds the elements in index order, wherever the bytes sit in the frame (view or copy)", async (t) => {
  const { parent } = await connectedWorker(t);
  const values = Float64Array.from({ length: 1000 }, (_, index) => Math.sin(index) * 1e6 + 0.1);
  // Ids of 1 to 8 characters move the binary through every offset modulo 8.
  for (let length = 1; length <= 8; length++) {
    const response = await sumArray(parent, "i".repeat(length), { array: ndarray(values) });
    assert.deepEqual(response.result, { sum: sequentialSum(values), count: 1000 }, `id of ${length} characters`);
  }
  const matrix = await sumArray(parent, "matrix", { array: ndarray(new Float64Array([1.5, 2.5, 3.5, 4.5, 5.5, 6.25]), [2, 3]) });
  assert.deepEqual(matrix.result, { sum: 23.75, count: 6 });
  const empty = await sumArray(parent, "empty", { array: ndarray(new Float64Array(0), [0, 5]) });
  assert.deepEqual(empty.result, { sum: 0, count: 0 });
  const scalar = await sumArray(parent, "scalar", { array: ndarray(new Float64Array([2.5]), []) });
  assert.deepEqual(scalar.result, { sum: 2.5, count: 1 });
});

test("sumArray refuses what is not a <f8 array with -32602 naming the member; on control it does not exist", async (t) => {
  const { worker, parent } = await connectedWorker(t);
  const four = new Float64Array([1, 2, 3, 4]);
  const cases: Array<[unknown, RegExp]> = [
    [{}, /'array' must be a map \{"__ndarray__": .*got nothing/],
    [{ array: [1, 2] }, /'array' must be a map .*got an array/],
    [{ array: { ...ndarray(four), extra: 1 } }, /'array' must be a map/],
    [{ array: ndarray(four, [4], "<f4") }, /'array\.__ndarray__\.dtype' must be "<f8", got "<f4"/],
    [{ array: ndarray(four, [4], ">f8") }, /'array\.__ndarray__\.dtype' must be "<f8", got ">f8"/],
    [{ array: ndarray(four, [2, -2]) }, /'array\.__ndarray__\.shape' must be an array of integers >= 0, got an array/],
    [{ array: ndarray(four, "4") }, /'array\.__ndarray__\.shape' must be an array of integers >= 0, got string/],
    [{ array: ndarray(four, [5]) }, /'array\.__ndarray__\.data' must be binary of 8 × product\(shape\) = 40 bytes, got 32 bytes/],
    [{ array: { __ndarray__: { dtype: "<f8", shape: [1], data: "x" } } }, /'array\.__ndarray__\.data' must be binary of 8 × product\(shape\) = 8 bytes, got string/],
  ];
  for (const [index, [params, message]] of cases.entries()) {
    const response = await sumArray(parent, `bad-${index}`, params);
    const error = response.error as { code: number; message: string };
    assert.equal(error.code, ErrorCodes.InvalidParams, JSON.stringify(response));
    assert.match(error.message, /^Invalid params: sumArray: /);
    assert.match(error.message, message);
  }
  const onControl = await worker.request("sumArray", { array: { __ndarray__: { dtype: "<f8", shape: [0], data: "" } } });
  assert.equal((onControl.error as { code: number }).code, ErrorCodes.MethodNotFound);
});

test("a 64 MiB float64 array through the data channel (ASPECT_IPC_MAX_FRAME_SIZE raised above it)", async (t) => {
  const { parent } = await connectedWorker(t, { env: { ASPECT_IPC_MAX_FRAME_SIZE: String(65 * 1024 * 1024) } });
  const count = 8 * 1024 * 1024;
  const values = new Float64Array(count);
  for (let index = 0; index < count; index++) values[index] = (index % 1000) * 0.001 + 0.5;
  // Framed by hand: the helper's framing keeps the default 64 MiB limit, which this frame exceeds.
  const payload = new MessagePackCodec().encode({ jsonrpc: "2.0", id: "big", method: "sumArray", params: { array: ndarray(values) } });
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, payload.byteLength);
  parent.writeRaw(header);
  parent.writeRaw(payload);
  const response = await parent.waitFor((m) => m.id === "big" && ("result" in m || "error" in m), "sumArray big", 60_000);
  assert.deepEqual(response.result, { sum: sequentialSum(values), count });
});
