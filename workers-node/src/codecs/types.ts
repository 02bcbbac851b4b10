/** Serialization: values to bytes and back. Pure code, no I/O. */

/**
 * @internal A decoded message, and what its value cannot show: whether its top-level `id` member
 * was a float (never an id: D6), and which other integer members of the protocol were.
 */
export interface DecodedMessage {
  readonly value: unknown;
  readonly floatId: boolean;
  /** Whether `params.protocol` was a float (MessagePack only; `$/hello` refuses it, D14). */
  readonly floatProtocol?: boolean;
  /** Which watched members were floats: bits of `FloatMember` (float-members.ts), 0 for none. */
  readonly floatMembers: number;
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
   * The result may be a list of parts to write in order, the first starting with the `room` bytes:
   * large binaries are then the caller's own buffers, spliced in, not copied. Absent when the codec
   * cannot; same errors as {@link Codec.encode}.
   */
  encodeWithRoom?(value: unknown, room: number): Uint8Array | Uint8Array[];
  /**
   * @internal Says that bytes returned by `encodeWithRoom` were written and are read by no one
   * any more, so that the codec may reuse their memory.
   */
  release?(encoded: Uint8Array): void;
}

/**
 * Called with a value the codec cannot carry (a `Date`, `Map`, `Set`, class instance, typed array
 * other than `Uint8Array`, function, symbol; for {@link JsonCodec} also a `Uint8Array`). Returns
 * the value to send in its place, which is encoded and checked as usual: it may hold values that
 * need the hook again (up to 64 applications down one path). Returning `undefined` declines: the
 * value is refused as without a hook. A thrown error becomes a `CodecError` naming the place.
 * Like the `default` of Python's `json.dumps`.
 */
export type EncodeHook = (value: unknown) => unknown;

/**
 * Called with every decoded map, innermost first (like the `object_hook` of Python's
 * `json.loads`), once the map passed the codec's checks; its return value replaces the map. The
 * message envelope is a map too and passes through it last: return a map unchanged when you do not
 * recognise it. A thrown error makes the whole message undecodable (the peer gets `-32700`).
 */
export type DecodeHook = (map: Record<string, unknown>) => unknown;

/** Options of {@link MessagePackCodec} and {@link JsonCodec}: hooks for types the wire does not carry. */
export interface CodecOptions {
  /** Replaces a value the codec cannot carry with one it can (see {@link EncodeHook}). */
  readonly encodeHook?: EncodeHook | undefined;
  /** Replaces each decoded map, innermost first (see {@link DecodeHook}). */
  readonly decodeHook?: DecodeHook | undefined;
}
