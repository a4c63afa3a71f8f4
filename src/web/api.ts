// The admin API as the console calls it: the bearer token from the sign-in (sessionStorage, never a URL),
// errors as ApiError with the API's message and per-field problems, and a refused token ends the sign-in.
import type { FieldProblem } from './api-types.js';

const TOKEN_KEY = 'fleetcast.adminToken';

export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message);
  }
}

interface ErrorBody {
  message?: string;
  errors?: FieldProblem[];
}

function errorFrom(status: number, text: string): ApiError {
  let body: ErrorBody = {};
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    // Not the API's JSON (a proxy's page, say): the status says enough.
  }
  return new ApiError(status, body.message ?? `the server answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, body.errors ?? []);
}

export class Api {
  constructor(
    private readonly token: () => string | null,
    /** Called when the server refuses the token (401): the console returns to the sign-in. */
    private readonly onUnauthorized: (message: string) => void,
  ) {}

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (json) headers['content-type'] = 'application/json';
    return headers;
  }

  private refused(err: ApiError): ApiError {
    if (err.status === 401) this.onUnauthorized(err.message);
    return err;
  }

  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, { method, headers: this.headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, `cannot reach the server (${(err as Error).message}): is it running? The console retries on its own.`);
    }
    const text = await res.text();
    if (!res.ok) throw this.refused(errorFrom(res.status, text));
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, signal);
  }

  /**
   * Sends a file as the request body with upload progress (fetch cannot report it; XMLHttpRequest can).
   * Resolves with the parsed answer; rejects with ApiError, or an AbortError when `signal` aborts.
   */
  upload<T>(path: string, file: Blob, onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', path);
      for (const [name, value] of Object.entries(this.headers(false))) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader('content-type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText) as T);
        else reject(this.refused(errorFrom(xhr.status, xhr.responseText)));
      };
      xhr.onerror = () => reject(new ApiError(0, 'the upload was interrupted: the server could not be reached or closed the connection'));
      xhr.onabort = () => reject(new DOMException('upload cancelled', 'AbortError'));
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(file);
    });
  }
}

/** Query string of the given parameters, skipping empty ones ("?a=1&b=x" or ""). */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
