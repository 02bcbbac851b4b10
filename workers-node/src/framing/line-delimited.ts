/**
 * Line-delimited framing for the control channel (PROTOCOL.md section 1): one message per line,
 * terminated by `\n`; a `\r` just before the `\n` is dropped; blank lines are skipped.
 *
 * Theory of operation: the decoder collects the pieces of the current line until a `\n` arrives.
 * Once more than `maxLineLength + 1` bytes are pending without a newline (the `+ 1` leaves room for
 * a `\r`), it reports `line_too_long` at once and DISCARDS bytes up to the next `\n`, so one
 * over-long line costs one error and bounded memory. Unlike length-prefixed framing, nothing here
 * is fatal: the next line is read normally.
 */
import { DEFAULT_MAX_LINE_LENGTH } from "../constants.js";
import { FramingError } from "../errors.js";
import type { FrameDecoder, FrameEvent, Framing } from "./types.js";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** Options of {@link LineDelimitedFraming}. */
export interface LineDelimitedFramingOptions {
  /** Longest line content accepted and sent, in bytes (terminator excluded): default 1 MiB. */
  maxLineLength?: number | undefined;
}

/** The control channel's framing: one UTF-8 line per message. */
export class LineDelimitedFraming implements Framing {
  /** Longest line content accepted and sent, in bytes. */
  readonly maxLineLength: number;

  constructor(options: LineDelimitedFramingOptions = {}) {
    const max = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxLineLength must be a positive integer, got ${max}`);
    }
    this.maxLineLength = max;
  }

  get maxPayloadSize(): number {
    return this.maxLineLength;
  }

  createDecoder(): FrameDecoder {
    return new LineDelimitedDecoder(this.maxLineLength);
  }

  encode(payload: Uint8Array): Uint8Array {
    if (payload.byteLength > this.maxLineLength) {
      const size = payload.byteLength;
      const limit = this.maxLineLength;
      throw new FramingError("line_too_long", `${tooLong(size, limit).message}: send large payloads on the data channel`, { size, limit });
    }
    if (payload.includes(NEWLINE)) {
      throw new FramingError("invalid_line", "a control channel message must not contain a raw newline");
    }
    const line = new Uint8Array(payload.byteLength + 1);
    line.set(payload, 0);
    line[payload.byteLength] = NEWLINE;
    return line;
  }
}

/**
 * The error for a line of `size` bytes (null: more than `limit`, its end not seen yet) against a
 * limit of `limit`; its message is the `-32005` one (D17).
 */
function tooLong(size: number | null, limit: number): FramingError {
  if (size === null) {
    return new FramingError("line_too_long", `line of more than ${limit} bytes exceeds max_line_length of ${limit} bytes`, { limit });
  }
  return new FramingError("line_too_long", `line of ${size} bytes exceeds max_line_length of ${limit} bytes`, { size, limit });
}

class LineDelimitedDecoder implements FrameDecoder {
  private pieces: Uint8Array[] = [];
  private pending = 0;
  private discarding = false;

  constructor(private readonly maxLineLength: number) {}

  get failed(): boolean {
    return false;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let start = 0;
    while (start < chunk.byteLength) {
      const newline = chunk.indexOf(NEWLINE, start);
      if (newline === -1) {
        this.collect(chunk.subarray(start), events);
        break;
      }
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      this.completeLine(this.join(piece), events);
    }
    return events;
  }

  end(): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.discarding) {
      // Already reported when it grew past the limit.
      this.discarding = false;
      return events;
    }
    const tail = this.join(new Uint8Array(0));
    if (tail.byteLength > this.maxLineLength) {
      events.push({ type: "error", error: tooLong(tail.byteLength, this.maxLineLength) });
    } else if (!isBlank(tail)) {
      events.push({
        type: "error",
        error: new FramingError("truncated", "control channel stream ended inside a line (no final newline)"),
      });
    }
    return events;
  }

  /** Keeps an unterminated piece, or reports the line as too long once it cannot fit any more. */
  private collect(piece: Uint8Array, events: FrameEvent[]): void {
    if (this.discarding) return;
    // Copy: the piece outlives this push and the caller's chunk.
    this.pieces.push(piece.slice());
    this.pending += piece.byteLength;
    if (this.pending > this.maxLineLength + 1) {
      events.push({ type: "error", error: tooLong(null, this.maxLineLength) });
      this.pieces = [];
      this.pending = 0;
      this.discarding = true;
    }
  }

  /** The pending pieces plus `last`, as one line; resets the pending state. */
  private join(last: Uint8Array): Uint8Array {
    if (this.pieces.length === 0) return last;
    const line = new Uint8Array(this.pending + last.byteLength);
    let offset = 0;
    for (const piece of this.pieces) {
      line.set(piece, offset);
      offset += piece.byteLength;
    }
    line.set(last, offset);
    this.pieces = [];
    this.pending = 0;
    return line;
  }

  private completeLine(line: Uint8Array, events: FrameEvent[]): void {
    const content =
      line.byteLength > 0 && line[line.byteLength - 1] === CARRIAGE_RETURN ? line.subarray(0, line.byteLength - 1) : line;
    if (content.byteLength > this.maxLineLength) {
      events.push({ type: "error", error: tooLong(content.byteLength, this.maxLineLength) });
    } else if (!isBlank(content)) {
      events.push({ type: "frame", frame: content });
    }
  }
}

/** Empty, or only spaces, tabs and carriage returns. */
function isBlank(line: Uint8Array): boolean {
  for (const byte of line) {
    if (byte !== SPACE && byte !== TAB && byte !== CARRIAGE_RETURN) return false;
  }
  return true;
}
