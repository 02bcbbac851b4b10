/**
 * SIGTERM and SIGINT (PROTOCOL.md 8.4): close the data channel, remove the socket file, exit 0 (as
 * the Python and Go SDKs do: the parent asked the worker to stop, and it stopped cleanly).
 *
 * A program that installs its own handler for a signal takes it over: the SDK then does nothing on
 * that signal (Node would not exit on it either), and the socket file is still removed when the
 * process exits.
 */
const SIGNALS = ["SIGTERM", "SIGINT"] as const;
type HandledSignal = (typeof SIGNALS)[number];

/** How long clean-up may take before the worker exits anyway (the worker's own backstop comes first: D4). */
const CLEANUP_TIMEOUT_MS = 190;

/** Installs the SDK's SIGTERM/SIGINT handlers. */
export class SignalGuard {
  private handling = false;

  constructor(private readonly cleanUp: () => Promise<void>) {}

  install(): void {
    if (process.platform === "win32") return;
    for (const signal of SIGNALS) {
      const listener = (): void => void this.handle(signal, listener);
      process.on(signal, listener);
    }
  }

  private async handle(signal: HandledSignal, own: () => void): Promise<void> {
    const programHandles = process.listeners(signal).some((listener) => listener !== own);
    if (programHandles || this.handling) return;
    this.handling = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.cleanUp().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLEANUP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    process.exit(0);
  }
}
