/**
 * Wire errors and local errors are apart (as vscode-jsonrpc keeps ResponseError apart from its own):
 * a RemoteError is an error response from the peer, or one a handler throws to answer with its own
 * code; RequestTimeout, RequestCancelled and ChannelClosed are local, carry a `code` for mapping,
 * and are not RemoteErrors. A handler that throws a local error is answered like any other throw.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ChannelBuilder,
  ChannelClosed,
  ErrorCodes,
  IpcError,
  JsonRpcProtocol,
  LineDelimitedFraming,
  ProtocolError,
  RemoteError,
  RequestCancelled,
  RequestTimeout,
} from "@aspect-ipc/worker";

import { channelPair, channelWithRawPeer, socketPair } from "./helpers/channels.js";

test("local errors are IpcErrors with a code, and never RemoteErrors", () => {
  const cases: Array<[IpcError & { code: number }, number, string]> = [
    [new RequestTimeout("compute", 50), ErrorCodes.RequestTimeout, "RequestTimeout"],
    [new RequestCancelled(), ErrorCodes.RequestCancelled, "RequestCancelled"],
    [new ChannelClosed(), ErrorCodes.ChannelClosed, "ChannelClosed"],
  ];
  for (const [error, code, name] of cases) {
    assert.ok(error instanceof IpcError, name);
    assert.ok(!(error instanceof RemoteError), `${name} is not a RemoteError`);
    assert.equal(error.code, code, name);
    assert.equal(error.name, name);
  }
  const remote = new RemoteError(-32602, "bad params", { field: "x" });
  assert.ok(remote instanceof IpcError);
  assert.deepEqual([remote.code, remote.message, remote.data], [-32602, "bad params", { field: "x" }]);
});

test("abandoned requests reject with local errors; the peer's -32002 answer is a RemoteError", async () => {
  const { worker, parent, dispose } = await channelPair();
  try {
    worker.onRequest("never", () => new Promise(() => undefined));
    worker.onRequest("refuse", () => {
      throw new RemoteError(ErrorCodes.RequestCancelled, "cancelled by the worker");
    });
    worker.start();
    parent.start();
    const local = (error: unknown, type: new (...args: never[]) => Error): boolean => {
      assert.ok(error instanceof type, `a ${type.name}`);
      assert.ok(!(error instanceof RemoteError), `${type.name} is not a RemoteError`);
      return true;
    };
    await assert.rejects(parent.request("never", undefined, { timeoutMs: 20 }), (error) => local(error, RequestTimeout));
    const controller = new AbortController();
    const aborted = parent.request("never", undefined, { signal: controller.signal });
    controller.abort();
    await assert.rejects(aborted, (error) => local(error, RequestCancelled));
    await assert.rejects(parent.request("refuse"), (error: unknown) => {
      assert.ok(error instanceof RemoteError && !(error instanceof RequestCancelled), "what the peer answered");
      assert.equal(error.code, ErrorCodes.RequestCancelled);
      return true;
    });
    const pending = assert.rejects(parent.request("never"), (error) => local(error, ChannelClosed));
    await parent.close();
    await pending;
    await assert.rejects(parent.request("after"), (error) => local(error, ChannelClosed));
  } finally {
    await dispose();
  }
});

test("a handler that throws a local error is answered -32000 with its type: -32008 never goes on the wire", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    worker.onRequest("closed", () => {
      throw new ChannelClosed("data channel is not connected");
    });
    worker.onRequest("timeout", async () => {
      throw new RequestTimeout("inner", 10);
    });
    worker.onRequest("cancelled", () => {
      throw new RequestCancelled("an inner call was cancelled");
    });
    worker.start();
    await peer.sendAll([
      { jsonrpc: "2.0", id: 1, method: "closed" },
      { jsonrpc: "2.0", id: 2, method: "timeout" },
      { jsonrpc: "2.0", id: 3, method: "cancelled" },
    ]);
    const answers = await peer.received(3);
    // The stacks (data.traceback, PROTOCOL.md 4.10) are checked elsewhere; the rest exactly here.
    const withoutStack = (error: unknown): unknown => {
      const { data, ...rest } = error as { data: { traceback?: string } };
      const { traceback, ...type } = data;
      assert.equal(typeof traceback, "string");
      return { ...rest, data: type };
    };
    const byId = new Map(answers.map((answer) => [answer.id, withoutStack(answer.error)]));
    assert.deepEqual(byId.get(1), { code: ErrorCodes.HandlerError, message: "data channel is not connected", data: { type: "ChannelClosed" } });
    assert.deepEqual(byId.get(2), { code: ErrorCodes.HandlerError, message: "request inner timed out after 10 ms", data: { type: "RequestTimeout" } });
    assert.deepEqual(byId.get(3), { code: ErrorCodes.HandlerError, message: "an inner call was cancelled", data: { type: "RequestCancelled" } });
  } finally {
    await dispose();
  }
});

test("a failing notification handler is reported as a local IpcError, not a RemoteError", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    const reported: IpcError[] = [];
    worker.onError((error) => reported.push(error));
    worker.onNotification("note", () => {
      throw new TypeError("bad note");
    });
    worker.start();
    await peer.send({ jsonrpc: "2.0", method: "note" });
    await peer.send({ jsonrpc: "2.0", id: 1, method: "$/ping" });
    await peer.received(1);
    assert.equal(reported.length, 1);
    const [error] = reported;
    assert.ok(error instanceof IpcError && !(error instanceof RemoteError));
    assert.match(error.message, /notification handler for note failed: bad note/);
    assert.ok(error.cause instanceof TypeError);
  } finally {
    await dispose();
  }
});

test("an unmatched error response from the peer is reported as the RemoteError it is; an invalid one as a ProtocolError", async () => {
  const { worker, peer, dispose } = await channelWithRawPeer();
  try {
    const reported: IpcError[] = [];
    worker.onError((error) => reported.push(error));
    worker.start();
    await peer.send({ jsonrpc: "2.0", id: 99, error: { code: -32001, message: "late" } });
    await peer.send({ jsonrpc: "2.0", id: 98, result: 1, error: { code: 1, message: "both" } });
    await peer.send({ jsonrpc: "2.0", id: 1, method: "$/ping" });
    await peer.received(1);
    assert.equal(reported.length, 2);
    assert.ok(reported[0] instanceof RemoteError && reported[0].code === -32001);
    assert.ok(reported[1] instanceof ProtocolError);
  } finally {
    await dispose();
  }
});

test("ChannelBuilder: withCodec sets the codec; a missing part is named", async () => {
  const pair = await socketPair();
  try {
    assert.throws(
      () => new ChannelBuilder().withTransport(pair.server).withFraming(new LineDelimitedFraming()).withProtocol(new JsonRpcProtocol()).build(),
      { name: "ProtocolError", message: "ChannelBuilder.build(): missing withCodec()" },
    );
  } finally {
    await pair.dispose();
  }
});
