/**
 * The parent's end of each of a real test worker's channels, data and control, able to send tagged
 * messages (tagged-wire.ts) with their floats as floats: MessagePack float 64 on data, `4.0` on control.
 */
import { LengthPrefixedFraming } from "@aspect-ipc/worker";

import { connectedWorker } from "./parent.js";
import { taggedJson, taggedMessagePack } from "./tagged-wire.js";

export type Message = Record<string, unknown>;

/** The parent's end of one channel: messages sent as usual, tagged ones with their floats as floats. */
export interface ParentEnd {
  readonly name: "data" | "control";
  send(message: Message): void;
  /** Sends a tagged message (`{"$float": 4}` is the float 4.0 on the wire). */
  sendTagged(message: unknown): void;
  waitFor(predicate: (message: Message) => boolean, what: string): Promise<Message>;
  received(): Message[];
}

/** A test worker with a data channel, killed when `t` ends: its two channels, as the parent sees them. */
export async function parentEnds(t: { after(fn: () => void): void }): Promise<ParentEnd[]> {
  const { worker, parent } = await connectedWorker(t);
  const framing = new LengthPrefixedFraming();
  return [
    {
      name: "data",
      send: (message) => parent.send(message),
      sendTagged: (message) => parent.writeRaw(framing.encode(taggedMessagePack(message))),
      waitFor: (predicate, what) => parent.waitFor(predicate, what),
      received: () => parent.messages.items,
    },
    {
      name: "control",
      send: (message) => worker.send(message),
      sendTagged: (message) => worker.writeRaw(`${taggedJson(message) as string}\n`),
      waitFor: (predicate, what) => worker.waitControl(predicate, what),
      received: () => worker.control.items,
    },
  ];
}
