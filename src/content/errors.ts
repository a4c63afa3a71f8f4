// The one error type of the content library: a code the server can map to a status, and a message a person can act on.

export type ContentErrorCode = 'unreadable' | 'unsupported' | 'corrupt' | 'no-space' | 'interrupted' | 'not-found' | 'tool-missing';

export class ContentError extends Error {
  override readonly name = 'ContentError';
  constructor(
    readonly code: ContentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A failed write inside the store: disk full is its own code, anything else is an unexpected I/O failure. */
export function storeWriteError(err: unknown, root: string): ContentError {
  if (err instanceof ContentError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new ContentError('no-space', `no space left in the content library at ${root}: free some space (remove unused images) and import again`, { cause: err });
  }
  return new ContentError('unreadable', `cannot write into the content library at ${root}: ${(err as Error).message}`, { cause: err });
}

/** A failed read of an import source, phrased for the person who named the file. */
export function sourceReadError(err: unknown, source: string): ContentError {
  if (err instanceof ContentError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'no such file' :
    code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
    code === 'EISDIR' ? 'it is a directory' :
    (err as Error).message;
  return new ContentError('unreadable', `cannot read ${source}: ${why}`, { cause: err });
}

export function interrupted(what = 'import'): ContentError {
  return new ContentError('interrupted', `${what} interrupted: nothing was changed in the content library`);
}
