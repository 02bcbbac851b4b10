/** Assembles a {@link Channel} from its parts (the design's `ChannelBuilder`). */
import type { Codec } from "../codecs/types.js";
import { ProtocolError } from "../errors.js";
import type { Framing } from "../framing/types.js";
import type { JsonRpcProtocol } from "../jsonrpc/protocol.js";
import type { Transport } from "../transports/types.js";
import { Channel } from "./channel.js";

/**
 * Builds a channel:
 * ```ts
 * const channel = new ChannelBuilder()
 *   .withTransport(TransportFactory.createStdio())
 *   .withFraming(new LineDelimitedFraming())
 *   .withCodec(new JsonCodec())
 *   .withProtocol(new JsonRpcProtocol())
 *   .build();
 * ```
 */
export class ChannelBuilder {
  private transport: Transport | null = null;
  private framing: Framing | null = null;
  private codec: Codec | null = null;
  private protocol: JsonRpcProtocol | null = null;
  private name: string | undefined;

  /** The byte stream: `TransportFactory.createStdio()`, or a connection from a pipe server. */
  withTransport(transport: Transport): this {
    this.transport = transport;
    return this;
  }

  /** `LineDelimitedFraming` (control) or `LengthPrefixedFraming` (data). */
  withFraming(framing: Framing): this {
    this.framing = framing;
    return this;
  }

  /** `JsonCodec` (control) or `MessagePackCodec` (data). */
  withCodec(codec: Codec): this {
    this.codec = codec;
    return this;
  }

  /** `JsonRpcProtocol`. */
  withProtocol(protocol: JsonRpcProtocol): this {
    this.protocol = protocol;
    return this;
  }

  /** A name for messages ("control", "data"). Optional. */
  withName(name: string): this {
    this.name = name;
    return this;
  }

  /**
   * Creates the channel (not started: register handlers, then call `start()`).
   * @throws {ProtocolError} if a part is missing.
   */
  build(): Channel {
    const missing = [
      this.transport === null ? "withTransport()" : null,
      this.framing === null ? "withFraming()" : null,
      this.codec === null ? "withCodec()" : null,
      this.protocol === null ? "withProtocol()" : null,
    ].filter((part): part is string => part !== null);
    if (missing.length > 0 || this.transport === null || this.framing === null || this.codec === null || this.protocol === null) {
      throw new ProtocolError(`ChannelBuilder.build(): missing ${missing.join(", ")}`);
    }
    return new Channel({
      transport: this.transport,
      framing: this.framing,
      codec: this.codec,
      protocol: this.protocol,
      ...(this.name === undefined ? {} : { name: this.name }),
    });
  }
}
