// Client API (/api/client) and unicast content (/content): what a machine being deployed uses. It needs no
// admin token (only the enrollment secret when one is configured) and can change nothing but the record
// of its own transfer.
import { createReadStream, promises as fs } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ContentAccess } from '../db/deployment-repositories.js';
import { HttpError, type ServerContext } from './context.js';
import type { ClientReport } from './session-manager.js';
import { clientSchema, digestSchema, errorSchema, locationRequestSchema, locationSchema, reportSchema } from './schemas.js';

export const CLIENT_SECRET_HEADER = 'x-fleetcast-client-secret';

interface LocationRequest {
  client: { name: string; mac?: string; uuid?: string };
  image: string;
  version?: string;
  retryOf?: string;
  access?: ContentAccess;
}

export function clientRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const tags = ['client'];
  const baseUrl = (req: FastifyRequest) => ctx.config.publicUrl ?? `${req.protocol}://${req.host}`;

  app.post<{ Body: LocationRequest }>('/api/client/content-location', {
    schema: {
      tags,
      summary: 'where to get an image: a multicast session, a unicast URL, or wait and ask again',
      body: locationRequestSchema,
      response: { 200: locationSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema },
    },
    handler: async (req) => {
      const { client, image: name, version, retryOf, access } = req.body;
      const image = await ctx.repos.images.byName(name);
      if (!image) throw new HttpError(404, `the distribution point has no image named "${name}"`);
      if (version !== undefined && image.version !== version) {
        throw new HttpError(404, `image "${name}" version ${version} is not here (the library has version ${image.version ?? '(none)'})`);
      }
      const location = await ctx.sessions.locate(image, { name: client.name, mac: client.mac, uuid: client.uuid, address: req.ip }, retryOf, access);
      req.log.info({ client: client.name, image: name, kind: location.kind, reason: 'reason' in location ? location.reason : undefined }, 'content location');
      if (location.kind !== 'unicast') return location;
      const { path, ...rest } = location;
      return { ...rest, url: `${baseUrl(req)}${path}` };
    },
  });

  app.post<{ Body: ClientReport & { ticket: string } }>('/api/client/report', {
    schema: {
      tags,
      summary: "a client's outcome for a ticket it was given",
      body: reportSchema,
      response: { 200: clientSchema, 400: errorSchema, 404: errorSchema },
    },
    handler: async (req) => {
      const { ticket, ...report } = req.body;
      const record = await ctx.sessions.report(ticket, report);
      if (!record) throw new HttpError(404, `no ticket ${ticket}: ask for a content location first`);
      req.log.info({ ticket, client: record.clientName, outcome: record.outcome, reason: record.reason }, 'client reported');
      return record;
    },
  });

  const contentSchema = {
    tags,
    summary: 'image content over HTTP: Range requests (resumable), ETag = SHA-256 digest',
    params: { type: 'object', properties: { digest: digestSchema }, required: ['digest'] },
    response: { 404: errorSchema, 416: errorSchema },
  };
  // HEAD is its own route: fastify's automatic one would read the whole (possibly huge) file to discard it.
  app.get<{ Params: { digest: string } }>('/content/:digest', { exposeHeadRoute: false, schema: contentSchema, handler: async (req, reply) => sendContent(ctx, req, reply, req.params.digest) });
  app.head<{ Params: { digest: string } }>('/content/:digest', { schema: { ...contentSchema, summary: 'size and ETag of image content' }, handler: async (req, reply) => sendContent(ctx, req, reply, req.params.digest) });
}

/** Serves a stored object with single-range support (what resumable downloaders use). */
async function sendContent(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply, digest: string) {
  if ((await ctx.repos.images.countByDigest(digest)) === 0) throw new HttpError(404, `no image with content ${digest}`);
  const path = ctx.store.pathOf(digest);
  const size = (await fs.stat(path)).size;
  const etag = `"${digest}"`;
  reply
    .header('Accept-Ranges', 'bytes')
    .header('ETag', etag)
    .header('Cache-Control', 'public, max-age=31536000, immutable')
    .header('Content-Type', 'application/octet-stream');
  const range = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (!range || (ifRange !== undefined && ifRange !== etag)) {
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    reply.header('Content-Length', size);
    return reply.send(req.method === 'HEAD' ? undefined : createReadStream(path));
  }
  const span = parseRange(range, size);
  if (!span) {
    reply.header('Content-Range', `bytes */${size}`);
    throw new HttpError(416, `range "${range}" is not satisfiable for ${size} bytes (only one bytes=START-END range is supported)`);
  }
  const [start, end] = span;
  reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`).header('Content-Length', end - start + 1);
  return reply.send(req.method === 'HEAD' ? undefined : createReadStream(path, { start, end }));
}

/** "bytes=0-99", "bytes=100-", "bytes=-500" → inclusive [start, end]; null if unsatisfiable or several ranges. */
export function parseRange(header: string, size: number): [number, number] | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return null;
  return [start, end];
}
