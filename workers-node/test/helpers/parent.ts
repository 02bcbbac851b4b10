/**
 * A minimal parent for tests: spawns a worker process, speaks the control channel on its stdio and
 * the data channel on its socket, with the SDK's pure layers (framing, codecs) and nothing else.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { LengthPrefixedFraming, LineDelimitedFraming, MessagePackCodec, type FrameDecoder } from "@aspect-ipc/worker";

/** The built test worker (integration-tests/workers/node). */
export const TEST_WORKER = fileURLToPath(new URL("../../../../integration-tests/workers/node/build/worker.js", import.meta.url));
/** The built dual-channel example worker. */
export const EXAMPLE_WORKER = fileURLToPath(new URL("../../../../examples/dual-channel/build/worker.js", import.meta.url));
/** Test-only workers compiled from test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}.js`, import.meta.url));
}

type Message = Record<string, unknown>;

/** A short private directory for sockets (Unix socket paths are limited to 107 bytes). */
export function tempDirectory(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), "aipc-"));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Waits for `predicate` to hold over a growing list, re-checked whenever the list changes. */
export class Inbox<T> {
  readonly items: T[] = [];
  private waiters: Array<() => void> = [];

  push(item: T): void {
    this.items.push(item);
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Wakes the waiters without a new item (the stream ended). */
  poke(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  async waitFor(predicate: (item: T) => boolean, what: string, timeoutMs = 10_000, done?: () => boolean): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.items.find(predicate);
      if (found !== undefined) return found;
      if (done?.()) throw new Error(`stream ended before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/**
 * The environment a parent gives a worker without a data channel (PROTOCOL.md 5): this process's,
 * with no token, data path or test switch (`TEST_*`) of its own.
 */
export function workerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ASPECT_IPC_PROTOCOL: "1", ASPECT_IPC_WORKER_ID: "worker-1", ASPECT_IPC_NAMESPACE: "tests" };
  for (const name of Object.keys(env)) {
    if (name.startsWith("ASPECT_IPC_TOKEN") || name.startsWith("ASPECT_IPC_DATA") || name.startsWith("TEST_")) delete env[name];
  }
  return env;
}

/** The result of a worker process. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned worker and the parent's end of its control channel. */
export class WorkerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly token: string;
  readonly dataPath: string | null;
  /** Every control line, parsed when it is JSON (else `{ raw: line }`). */
  readonly control = new Inbox<Message>();
  readonly exited: Promise<Exit>;
  private stderrText = "";
  private stdoutEnded = false;
  private nextId = 1;

  /** When the process exited ('exit', before its pipes are drained), by `performance.now()`. */
  readonly exitedAt: Promise<number>;

  /**
   * @param options.detached start the worker as the leader of a new session (process group), as
   *   the Python parent does.
   */
  constructor(
    script: string,
    options: { dataPath?: string | null; env?: Record<string, string | undefined>; token?: string; detached?: boolean } = {},
  ) {
    this.token = options.token ?? randomBytes(32).toString("hex");
    this.dataPath = options.dataPath ?? null;
    const env = workerEnv();
    if (this.dataPath !== null) {
      env.ASPECT_IPC_DATA_PATH = this.dataPath;
      env.ASPECT_IPC_TOKEN = this.token;
    }
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    this.child = spawn(process.execPath, [script], { env, stdio: ["pipe", "pipe", "pipe"], detached: options.detached === true });
    this.exitedAt = new Promise((resolve) => this.child.once("exit", () => resolve(performance.now())));
    // 'close', not 'exit': it comes after the pipes are drained, so stdout and stderr are complete.
    this.exited = new Promise((resolve) => this.child.once("close", (code, signal) => resolve({ code, signal })));
    const decoder = new LineDelimitedFraming().createDecoder();
    this.child.stdout.on("data", (chunk: Buffer) => this.onControlBytes(decoder, chunk));
    this.child.stdout.on("end", () => {
      this.stdoutEnded = true;
      this.control.poke();
    });
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderrText += chunk.toString("utf8")));
    this.child.stdin.on("error", () => undefined); // the worker may exit before reading everything
  }

  /** Everything the worker wrote to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /** Waits for `$/ready` and returns its params. */
  async ready(): Promise<Message> {
    const message = await this.waitControl((m) => m.method === "$/ready", "$/ready");
    return message.params as Message;
  }

  /** Writes one raw line (without adding anything) to the worker's stdin. */
  writeRaw(text: string | Uint8Array): void {
    this.child.stdin.write(text);
  }

  /** Sends a control message. */
  send(message: Message): void {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends a control request and waits for its response (result or error). */
  async request(method: string, params?: unknown): Promise<Message> {
    const id = this.nextId++;
    this.send(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    return this.waitControl((m) => m.id === id && ("result" in m || "error" in m), `control response to ${method}`);
  }

  /** Waits for a control message matching `predicate`. */
  waitControl(predicate: (message: Message) => boolean, what: string, timeoutMs?: number): Promise<Message> {
    return this.control.waitFor(predicate, what, timeoutMs, () => this.stdoutEnded);
  }

  /** Waits until stderr contains `text`. */
  async waitStderr(text: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stderrText.includes(text)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)} on stderr; got ${JSON.stringify(this.stderrText)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Closes the worker's stdin (the parent going away). */
  closeStdin(): void {
    this.child.stdin.end();
  }

  /** Kills the worker if it is still running (test clean-up). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  /** Connects to the data path, without saying anything. */
  connectData(): Promise<DataConnection> {
    if (this.dataPath === null) throw new Error("this worker has no data path");
    return DataConnection.open(this.dataPath);
  }

  /** Connects and authenticates with `$/hello`; returns the connection and the hello response. */
  async openData(): Promise<DataConnection> {
    const connection = await this.connectData();
    const response = await connection.request("$/hello", { token: this.token, protocol: 1 });
    if (!("result" in response)) throw new Error(`$/hello failed: ${JSON.stringify(response)}`);
    return connection;
  }

  private onControlBytes(decoder: FrameDecoder, chunk: Buffer): void {
    for (const event of decoder.push(chunk)) {
      if (event.type !== "frame") continue;
      const line = Buffer.from(event.frame).toString("utf8");
      try {
        this.control.push(JSON.parse(line) as Message);
      } catch {
        this.control.push({ raw: line });
      }
    }
  }
}

/** The parent's end of one data connection. */
export class DataConnection {
  readonly messages = new Inbox<Message>();
  readonly closed: Promise<void>;
  private ended = false;
  private nextId = 1;
  private readonly framing = new LengthPrefixedFraming();
  private readonly codec = new MessagePackCodec();

  private constructor(readonly socket: Socket) {
    const decoder = this.framing.createDecoder();
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === "frame") this.messages.push(this.codec.decode(event.frame) as Message);
      }
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.ended = true;
        this.messages.poke();
        resolve();
      }),
    );
    socket.on("error", () => undefined);
  }

  static open(path: string): Promise<DataConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new DataConnection(socket));
      });
    });
  }

  /** True once the worker closed the connection. */
  get isClosed(): boolean {
    return this.ended;
  }

  /** Sends a message as one frame. */
  send(message: Message): void {
    this.socket.write(this.framing.encode(this.codec.encode(message)));
  }

  /** Writes raw bytes. */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends a request and waits for its response. */
  async request(method: string, params?: unknown): Promise<Message> {
    const id = this.nextId++;
    this.send(params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params });
    return this.waitFor((m) => m.id === id && ("result" in m || "error" in m), `data response to ${method}`);
  }

  waitFor(predicate: (message: Message) => boolean, what: string, timeoutMs?: number): Promise<Message> {
    return this.messages.waitFor(predicate, what, timeoutMs, () => this.ended);
  }

  close(): void {
    this.socket.end();
  }
}

/** How {@link connectedWorker} starts its worker. */
export interface ConnectedWorkerOptions {
  /** The worker's script: the test worker unless given (a fixture, say). */
  readonly script?: string;
  /** Set in (or, undefined, removed from) the worker's environment. */
  readonly env?: Record<string, string | undefined>;
  /**
   * A deaf parent: once `$/hello` is answered, the parent's socket is paused and reads nothing, so
   * that what the worker writes waits in its socket and its outbox (PROTOCOL.md 2.6, 4.5).
   */
  readonly deafParent?: boolean;
}

/** A worker (the test worker by default) started with a data channel, its connection open; killed when `t` ends. */
export async function connectedWorker(t: { after(fn: () => void): void }, options: ConnectedWorkerOptions = {}): Promise<{ worker: WorkerProcess; parent: DataConnection }> {
  const directory = tempDirectory();
  const worker = new WorkerProcess(options.script ?? TEST_WORKER, { dataPath: join(directory.path, "d.sock"), env: options.env ?? {} });
  t.after(() => {
    worker.kill();
    directory.remove();
  });
  await worker.ready();
  const parent = await worker.openData();
  if (options.deafParent === true) parent.socket.pause();
  return { worker, parent };
}
