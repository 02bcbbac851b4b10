/** `worker.data` of a worker without a data channel. */
import {
  HandlerTable,
  refusedCall,
  type Disposable,
  type NotificationHandler,
  type RequestHandler,
  type RequestHandlerOptions,
  type RequestOptions,
} from "../channel/handlers.js";
import { ChannelClosed } from "../errors.js";
import { StreamCall, type StreamOptions } from "../streams/call.js";
import type { WorkerEndpoint } from "./endpoint.js";

/** `worker.data` of a control-only worker: handlers are kept (never called), calls reject. */
export class AbsentDataChannel implements WorkerEndpoint {
  private readonly handlers = new HandlerTable();

  onRequest<P = unknown, R = unknown>(method: string, handler: RequestHandler<P, R>, options?: RequestHandlerOptions): Disposable {
    return this.handlers.onRequest(method, handler, options);
  }

  onNotification<P = unknown>(method: string, handler: NotificationHandler<P>): Disposable {
    return this.handlers.onNotification(method, handler);
  }

  request<R = unknown>(_method: string, _params?: unknown, options?: RequestOptions): Promise<R> {
    return Promise.reject(refusedCall(options, noDataChannel()));
  }

  stream(_method: string, _params?: Record<string, unknown>, options?: StreamOptions): StreamCall {
    return new StreamCall(() => {
      throw refusedCall(options, noDataChannel());
    });
  }

  notify(): Promise<void> {
    return Promise.reject(noDataChannel());
  }
}

function noDataChannel(): ChannelClosed {
  return new ChannelClosed("this worker has no data channel (ASPECT_IPC_DATA_PATH is not set)");
}
