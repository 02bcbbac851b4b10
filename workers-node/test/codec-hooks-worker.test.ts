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
});
