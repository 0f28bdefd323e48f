import WebSocket from 'ws';

/**
 * ARI REST requests carried over the event WebSocket ("ARI REST over WebSocket", Asterisk 20.14.0,
 * 21.9.0, 22.4.0 and later): a RESTRequest message goes out, Asterisk answers with a RESTResponse
 * event on the same socket, and request_id ties the two together. An undici request cost the
 * service ~70 µs of JavaScript in the route bench's CPU profile, its write deferred through
 * setImmediate, and costs Asterisk a parsed and authenticated HTTP request; this costs one
 * JSON.stringify, one frame written at once, and the JSON.parse the event stream does anyway.
 *
 * Asterisk sends a RESTResponse through the application's event filter like any event: the port
 * must list it among the allowed types, or every answer is silently dropped.
 */
export interface RestResponse {
  type: 'RESTResponse';
  request_id: string;
  status_code: number;
  reason_phrase: string;
  uri: string;
  content_type?: string;
  /** the body an HTTP request would have got, as text; absent when there is none (204) */
  message_body?: string;
}

export interface WsAnswer {
  status: number;
  reason: string;
  text: string;
}

/**
 * What a request fails with when its WebSocket goes before the answer came. It carries undici's
 * name and code for a connection lost mid-request, so that callers handle a lost WebSocket as
 * they handle a lost HTTP connection: the request may or may not have been carried out.
 */
export class AriConnectionLost extends Error {
  override name = 'SocketError';
  readonly code = 'UND_ERR_SOCKET';
}

interface Pending {
  method: string;
  uri: string;
  resolve(a: WsAnswer): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout | undefined;
}

export class WsRest {
  private readonly pending = new Map<string, Pending>();
  // request ids need only be unique on this socket, and a counter costs nothing
  private next = 0;
  /** why the socket went, once it has */
  private lost: string | undefined;

  constructor(private readonly socket: Pick<WebSocket, 'send' | 'readyState'>) {}

  /** True while requests can be written (not once a close has begun). */
  get open(): boolean {
    return this.lost === undefined && this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * `uri` is relative to ARI's root, with its query string. `timeoutMs` undefined: no deadline
   * (the answer, or the socket's end, settles it).
   */
  request(method: string, uri: string, body: string | undefined, timeoutMs: number | undefined, timeoutError: () => Error): Promise<WsAnswer> {
    return new Promise<WsAnswer>((resolve, reject) => {
      if (this.lost !== undefined) return reject(connectionLost(method, uri, this.lost));
      const id = String(++this.next);
      const msg: Record<string, string> = { type: 'RESTRequest', request_id: id, method, uri };
      if (body !== undefined) {
        msg.content_type = 'application/json';
        msg.message_body = body;
      }
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              // a late answer finds no entry and is dropped
              this.pending.delete(id);
              reject(timeoutError());
            }, timeoutMs);
      this.pending.set(id, { method, uri, resolve, reject, timer });
      // ws reports a failed write on the socket ('error', then 'close'), which ends every request
      this.socket.send(JSON.stringify(msg));
    });
  }

  /** Settles the request this answers; false when it answers none still waiting (timed out, or not ours). */
  answer(res: RestResponse): boolean {
    const p = this.pending.get(res.request_id);
    if (!p) return false;
    this.pending.delete(res.request_id);
    clearTimeout(p.timer);
    p.resolve({ status: res.status_code, reason: res.reason_phrase, text: res.message_body ?? '' });
    return true;
  }

  /** The socket is gone, and with it every answer not yet in: fails those requests now, and any later one. */
  close(reason: string): void {
    this.lost ??= reason;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(connectionLost(p.method, p.uri, reason));
    }
    this.pending.clear();
  }
}

/** Named like the HTTP path's errors: method and path, without the query (it may carry values). */
function connectionLost(method: string, uri: string, reason: string): AriConnectionLost {
  return new AriConnectionLost(`ARI ${method} /${uri.split('?')[0]}: the WebSocket closed before the answer came (${reason})`);
}
