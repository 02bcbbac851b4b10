/** Serialization: values to bytes and back. Pure code, no I/O. */

/** @internal A decoded message, and whether its top-level `id` member was a float (never an id: D6). */
export interface DecodedMessage {
  readonly value: unknown;
  readonly floatId: boolean;
  /** Whether `params.protocol` was a float (MessagePack only; `$/hello` refuses it, D14). */
  readonly floatProtocol?: boolean;
}

/** A codec for one channel: {@link JsonCodec} (control) or {@link MessagePackCodec} (data). */
export interface Codec {
  /** Name used in messages: "JSON", "MessagePack". */
  readonly name: string;
  /**
   * Encodes one value.
   * @throws {CodecError} if the value (or a part of it) has no form in this codec.
   */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes exactly one value from `bytes`.
   * @throws {CodecError} if the bytes are not exactly one valid value.
   */
  decode(bytes: Uint8Array): unknown;
  /**
   * @internal Decodes a message (same errors as {@link Codec.decode}), telling whether its
   * top-level `id` member was written as a float, which the decoded value cannot show.
   */
  decodeMessage?(bytes: Uint8Array): DecodedMessage;
  /**
   * @internal Encodes one value after `room` unused bytes (for a frame header written in place).
   * Absent when the codec cannot; same errors as {@link Codec.encode}.
   */
  encodeWithRoom?(value: unknown, room: number): Uint8Array;
  /**
   * @internal Says that bytes returned by `encodeWithRoom` were written and are read by no one
   * any more, so that the codec may reuse their memory.
   */
  release?(encoded: Uint8Array): void;
}
