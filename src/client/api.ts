// HTTP client of the distribution point's APIs (admin and client), on Node's built-in fetch.
import type { Readable } from 'node:stream';

/** Header carrying a registered device's credential on agent calls (/api/client/policy, /status). */
export const DEVICE_CREDENTIAL_HEADER = 'x-fleetcast-device';

export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  server: string;
  /** Admin bearer token. */
  token?: string;
  /** Client enrollment secret, when the server requires one. */
  clientSecret?: string;
}

export class ApiClient {
  readonly base: string;

  constructor(private readonly o: ApiClientOptions) {
    try {
      const u = new URL(o.server);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    } catch {
      throw new ApiError(0, `"${o.server}" is not a server URL: give one like http://127.0.0.1:8080`);
    }
    this.base = o.server.replace(/\/+$/, '');
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.o.token) h.authorization = `Bearer ${this.o.token}`;
    if (this.o.clientSecret) h['x-fleetcast-client-secret'] = this.o.clientSecret;
    return h;
  }

  /** A JSON request; the server's error message becomes the ApiError message. */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.send(path, {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  /** Streams a body (an image upload). */
  async upload<T>(path: string, stream: Readable, size: number, signal?: AbortSignal): Promise<T> {
    const { Readable: R } = await import('node:stream');
    const res = await this.send(path, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(size) }),
      body: R.toWeb(stream) as ReadableStream,
      duplex: 'half',
      signal,
    } as RequestInit);
    return (await res.json()) as T;
  }

  /** A raw request (content downloads); non-2xx answers become ApiError. */
  async send(path: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(0, `cannot reach the server at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is \`fleetcast server\` running there? --server URL)`);
    }
    if (!res.ok && res.status !== 304) {
      const text = await res.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        /* not JSON: the text as is */
      }
      throw new ApiError(res.status, `${res.status} ${res.statusText}: ${message}`);
    }
    return res;
  }
}
