/**
 * Codec hooks in a real worker process (`new Worker({ dataCodec })`): the data channel's requests
 * go through the decode hook and its results through the encode hook; the control channel, with its
 * plain codec, refuses the same result naming the place.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { ErrorCodes } from "@aspect-ipc/worker";

import { WorkerProcess, fixture, tempDirectory } from "./helpers/parent.js";

test("the data codec's hooks carry Dates both ways; control refuses one with the place in the result", async (t) => {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("codec-hooks"), { dataPath: join(directory.path, "d.sock") });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const data = await worker.openData();

  const answer = await data.request("nextDay", { when: { __date__: "2026-11-29T01:00:00.000Z" } });
  assert.deepEqual(answer.result, { when: { __date__: "2026-11-30T01:00:00.000Z" }, isDate: true });
  assert.deepEqual((await data.request("rows")).result, { rows: [{ when: 1 }, { when: { __date__: "1970-01-01T00:00:00.000Z" } }] });

  const refused = await worker.request("rows");
  const error = refused.error as { code: number; message: string };
  assert.equal(error.code, ErrorCodes.InternalError);
  assert.match(error.message, /cannot encode a Date at \$\.result\.rows\[1\]\.when as JSON: convert it first \(a Date to an ISO string/);
  // As from the Python and Go SDKs: the message says why, no data (PROTOCOL.md 4.9 names none).
  assert.equal("data" in error, false);
});

test("params that a decode hook turned into a Date are not a map: -32600 on both channels, as from the other SDKs", async (t) => {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("codec-hooks"), { dataPath: join(directory.path, "d.sock") });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const data = await worker.openData();
  const when = { __date__: "2026-01-01T00:00:00.000Z" };
  for (const call of [(method: string, params: unknown) => data.request(method, params), (method: string, params: unknown) => worker.request(method, params)]) {
    const refused = await call("describe", when);
    assert.deepEqual(refused.error, { code: ErrorCodes.InvalidRequest, message: 'Invalid Request: member "params" must be an array or a map' });
    // Inside the params, the hook's values are the handler's.
    assert.deepEqual((await call("describe", [when, 1])).result, ["Date", "number"]);
  }
});

test("a decode hook that fails is located by its path on both channels (-32700 with the request's id)", async (t) => {
  const directory = tempDirectory();
  const worker = new WorkerProcess(fixture("codec-hooks"), { dataPath: join(directory.path, "d.sock") });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const data = await worker.openData();
  const params = { rows: [{ ok: 1 }, { boom: 1 }] };
  const onData = await data.request("describe", params);
  assert.deepEqual(onData.error, { code: ErrorCodes.ParseError, message: "Parse error: decode hook failed on the map at $.params.rows[1] (MessagePack): Error: boom" });
  const onControl = await worker.request("describe", params);
  assert.deepEqual(onControl.error, { code: ErrorCodes.ParseError, message: "Parse error: decode hook failed on the map at $.params.rows[1] (JSON): Error: boom" });
});
