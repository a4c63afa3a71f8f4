// Admin REST API under /api/v1: images, imports, distribution point settings, sessions, client outcomes.
// Every route needs the admin bearer token (checked in app.ts).
import { randomUUID } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import type { ImageFormat } from '../content/index.js';
import { ConflictError, type ClientOutcome, type ImageChanges, type SessionState } from '../db/repositories.js';
import { HttpError, UPLOADS_DIR, type ServerContext } from './context.js';
import { SettingsError, type DpSettings } from './dp-settings.js';
import { checkPackageSettings, type ImportRequest } from './imports.js';
import {
  clientOutcomes,
  clientSchema,
  dpChangesSchema,
  dpSettingsSchema,
  errorSchema,
  imageChangesSchema,
  imageName,
  imageSchema,
  importJobSchema,
  importRequestSchema,
  sessionSchema,
  sessionStates,
  uploadQuerySchema,
} from './schemas.js';

const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };
const nameParams = { type: 'object', properties: { name: imageName }, required: ['name'] } as const;
const idParams = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;
const limit = { type: 'integer', minimum: 1, maximum: 10000, default: 200 } as const;

export function adminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // ctx's members are read per request: the session manager and import jobs are attached after the app is built.
  const { repos, settings } = ctx;
  const tags = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

  app.get('/api/v1/status', {
    schema: {
      ...tags('server'),
      summary: 'server status',
      response: {
        200: {
          type: 'object',
          properties: {
            version: { type: 'string' },
            uptimeSeconds: { type: 'number' },
            database: { type: 'string' },
            contentRoot: { type: 'string' },
            multicastInterface: { type: ['string', 'null'] },
            liveSessions: { type: 'array', items: { type: 'integer' } },
            runningImports: { type: 'integer' },
          },
        },
      },
    },
    handler: async () => ({
      version: ctx.version,
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000),
      database: repos.describe(),
      contentRoot: join(ctx.config.dataDir, 'content'),
      multicastInterface: ctx.config.interface,
      liveSessions: ctx.sessions.liveSessions(),
      runningImports: ctx.imports.list().filter((j) => j.state === 'running').length,
    }),
  });

  // ---- images -------------------------------------------------------------------------------------------------

  app.get('/api/v1/images', {
    schema: { ...tags('images'), summary: 'list the content library', response: { 200: { type: 'array', items: imageSchema } } },
    handler: async () => repos.images.list(),
  });

  app.get<{ Params: { name: string } }>('/api/v1/images/:name', {
    schema: { ...tags('images'), summary: 'one image', params: nameParams, response: { 200: imageSchema, ...errors } },
    handler: async (req) => findImage(ctx, req.params.name),
  });

  app.patch<{ Params: { name: string }; Body: ImageChanges }>('/api/v1/images/:name', {
    schema: { ...tags('images'), summary: 'change version, description or package distribution settings', params: nameParams, body: imageChangesSchema, response: { 200: imageSchema, ...errors } },
    handler: async (req) => {
      const image = await findImage(ctx, req.params.name);
      checkPackageSettings({ ...image, ...req.body });
      return (await repos.images.update(image.name, req.body))!;
    },
  });

  app.delete<{ Params: { name: string } }>('/api/v1/images/:name', {
    schema: { ...tags('images'), summary: 'delete an image (refused while a session uses it)', params: nameParams, response: { 204: { type: 'null' }, ...errors } },
    handler: async (req, reply) => {
      const image = await findImage(ctx, req.params.name);
      if (ctx.sessions.imageInUse(image.id) || (await repos.sessions.countLiveForImage(image.id)) > 0) {
        throw new HttpError(409, `image "${image.name}" is in use by a live multicast session: wait for it to end or cancel it (fleetcast session list / session cancel ID)`);
      }
      await repos.images.delete(image.name);
      if ((await repos.images.countByDigest(image.digest)) === 0) await ctx.store.remove(image.digest);
      req.log.info({ image: image.name, digest: image.digest }, 'image deleted');
      return reply.code(204).send();
    },
  });

  // ---- imports ------------------------------------------------------------------------------------------------

  app.post<{ Body: Omit<ImportRequest, 'cleanup' | 'sourceLabel'> }>('/api/v1/imports', {
    schema: {
      ...tags('images'),
      summary: 'import an image file that is on the server (runs in the background; poll the job)',
      body: importRequestSchema,
      response: { 202: importJobSchema, ...errors },
    },
    handler: async (req, reply) => {
      if (!req.body.path.startsWith('/')) {
        const message = `path "${req.body.path}" must be absolute: it is read by the server, not by the client`;
        throw new HttpError(400, message, [{ path: '/path', message }]);
      }
      return reply.code(202).send(await startImport(ctx, req.body));
    },
  });

  app.post<{ Querystring: Omit<ImportRequest, 'path' | 'cleanup' | 'sourceLabel'> & { format?: ImageFormat } }>('/api/v1/imports/upload', {
    schema: {
      ...tags('images'),
      summary: 'upload an image (application/octet-stream body) and import it',
      querystring: uploadQuerySchema,
      response: { 202: importJobSchema, ...errors },
    },
    handler: async (req, reply) => {
      if (!req.headers['content-type']?.startsWith('application/octet-stream')) throw new HttpError(415, 'send the image as application/octet-stream');
      const dir = join(ctx.config.dataDir, UPLOADS_DIR);
      await fs.mkdir(dir, { recursive: true });
      const spool = join(dir, `${randomUUID()}.upload`);
      const cleanup = () => fs.rm(spool, { force: true });
      try {
        await pipeline(req.body as Readable, createWriteStream(spool, { mode: 0o600 }));
      } catch (err) {
        await cleanup();
        throw new HttpError(400, `upload interrupted: ${(err as Error).message}`);
      }
      return reply.code(202).send(await startImport(ctx, { ...req.query, path: spool, cleanup, sourceLabel: `upload (${req.query.name})` }));
    },
  });

  app.get('/api/v1/imports', {
    schema: { ...tags('images'), summary: 'import jobs since the server started', response: { 200: { type: 'array', items: importJobSchema } } },
    handler: async () => ctx.imports.list(),
  });

  app.get<{ Params: { id: string } }>('/api/v1/imports/:id', {
    schema: { ...tags('images'), summary: 'progress of an import', params: { type: 'object', properties: { id: { type: 'string' } } }, response: { 200: importJobSchema, ...errors } },
    handler: async (req) => ctx.imports.get(req.params.id) ?? notFound(`no import job ${req.params.id}`),
  });

  app.delete<{ Params: { id: string } }>('/api/v1/imports/:id', {
    schema: { ...tags('images'), summary: 'cancel an import (nothing of it stays in the library)', params: { type: 'object', properties: { id: { type: 'string' } } }, response: { 200: importJobSchema, ...errors } },
    handler: async (req) => (await ctx.imports.cancel(req.params.id)) ?? notFound(`no import job ${req.params.id}`),
  });

  // ---- distribution point settings -------------------------------------------------------------------------

  app.get('/api/v1/dp', {
    schema: { ...tags('distribution point'), summary: 'multicast settings of the distribution point', response: { 200: dpSettingsSchema } },
    handler: async () => settings.get(),
  });

  app.patch<{ Body: Partial<DpSettings> }>('/api/v1/dp', {
    schema: { ...tags('distribution point'), summary: 'change multicast settings (applies to new sessions)', body: dpChangesSchema, response: { 200: dpSettingsSchema, ...errors } },
    handler: async (req) => {
      try {
        const next = await settings.update(req.body);
        req.log.info({ changes: req.body }, 'distribution point settings changed');
        return next;
      } catch (err) {
        if (err instanceof SettingsError) throw new HttpError(400, err.message, err.errors);
        throw err;
      }
    },
  });

  // ---- sessions and client outcomes -------------------------------------------------------------------------

  app.get<{ Querystring: { state?: SessionState; image?: string; limit: number } }>('/api/v1/sessions', {
    schema: {
      ...tags('sessions'),
      summary: 'multicast sessions, newest first',
      querystring: { type: 'object', properties: { state: { type: 'string', enum: sessionStates }, image: imageName, limit }, additionalProperties: false },
      response: { 200: { type: 'array', items: sessionSchema } },
    },
    handler: async (req) => {
      const list = await repos.sessions.list({ state: req.query.state, imageName: req.query.image, limit: req.query.limit });
      return list.map((s) => ({ ...s, live: ctx.sessions.status(s.id) ?? null }));
    },
  });

  app.get<{ Params: { id: number } }>('/api/v1/sessions/:id', {
    schema: { ...tags('sessions'), summary: 'a session, with live status (per-client progress) while it runs', params: idParams, response: { 200: sessionSchema, ...errors } },
    handler: async (req) => {
      const s = (await repos.sessions.get(req.params.id)) ?? notFound(`no session ${req.params.id}`);
      return { ...s, live: ctx.sessions.status(s.id) ?? null };
    },
  });

  app.post<{ Params: { id: number }; Body: { reason?: string } | undefined }>('/api/v1/sessions/:id/cancel', {
    schema: {
      ...tags('sessions'),
      summary: 'cancel a live session (its clients are told at once)',
      params: idParams,
      body: { type: ['object', 'null'], properties: { reason: { type: 'string', maxLength: 500 } }, additionalProperties: false },
      response: { 200: sessionSchema, ...errors },
    },
    handler: async (req) => {
      const s = (await repos.sessions.get(req.params.id)) ?? notFound(`no session ${req.params.id}`);
      const reason = `cancelled by an administrator${req.body?.reason ? `: ${req.body.reason}` : ''}`;
      if (!(await ctx.sessions.cancel(s.id, reason))) throw new HttpError(409, `session ${s.id} is not live (it is ${s.state})`);
      return { ...(await repos.sessions.get(s.id))!, live: null };
    },
  });

  app.get<{ Querystring: { session?: number; image?: string; outcome?: ClientOutcome; limit: number } }>('/api/v1/clients', {
    schema: {
      ...tags('sessions'),
      summary: "clients served and their outcomes, newest first",
      querystring: {
        type: 'object',
        properties: { session: { type: 'integer', minimum: 1 }, image: imageName, outcome: { type: 'string', enum: clientOutcomes }, limit },
        additionalProperties: false,
      },
      response: { 200: { type: 'array', items: clientSchema } },
    },
    handler: async (req) => repos.clients.list({ sessionId: req.query.session, imageName: req.query.image, outcome: req.query.outcome, limit: req.query.limit }),
  });
}

function notFound(message: string): never {
  throw new HttpError(404, message);
}

async function findImage(ctx: ServerContext, name: string) {
  return (await ctx.repos.images.byName(name)) ?? notFound(`no image named "${name}" (fleetcast image list shows the library)`);
}

async function startImport(ctx: ServerContext, req: ImportRequest) {
  try {
    return await ctx.imports.start(req);
  } catch (err) {
    if (err instanceof ConflictError) throw new HttpError(409, err.message);
    throw err;
  }
}
