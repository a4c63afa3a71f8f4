// The HTTP server: admin API (/api/v1, bearer token), client API (/api/client), unicast content (/content),
// and the OpenAPI document generated from the route schemas.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import type { FieldProblem } from './api-types.js';
import { HttpError, type ServerContext } from './context.js';
import { consoleRoutes } from './routes-console.js';
import { adminRoutes } from './routes-admin.js';
import { ModelError } from './deployments.js';
import { deployAdminRoutes, deployClientRoutes } from './routes-deploy.js';
import { DEVICE_CREDENTIAL_HEADER } from '../client/api.js';
import { CLIENT_SECRET_HEADER, clientRoutes } from './routes-client.js';

export const OPENAPI_PATH = '/api/v1/openapi.json';

export async function buildApp(ctx: ServerContext, logger: FastifyServerOptions['logger']): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    // Unknown fields are an error, not silently dropped; report every problem of a request at once.
    ajv: { customOptions: { removeAdditional: false, allErrors: true } },
    forceCloseConnections: 'idle',
  });

  // Uploads arrive as a stream (images are far larger than any body limit).
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fleetcast distribution point',
        version: ctx.version,
        description: 'Admin API (/api/v1, bearer token), client API (/api/client) and unicast content (/content).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, clientSecret: { type: 'apiKey', in: 'header', name: CLIENT_SECRET_HEADER }, deviceCredential: { type: 'apiKey', in: 'header', name: DEVICE_CREDENTIAL_HEADER } } },
    },
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: SchemaViolation[]; code?: string }, req, reply) => {
    const status = err instanceof HttpError ? err.statusCode : err instanceof ModelError ? 400 : err.validation ? 400 : (err.statusCode ?? 500);
    if (status >= 500) req.log.error({ err }, 'request failed');
    const message = err.validation ? `invalid request: ${err.message}` : status >= 500 ? `internal error: ${err.message}` : err.message;
    // Every problem with its JSON-pointer path (an invalid task sequence, settings, a schema violation …), so
    // that a form shows each next to its field.
    const errors: FieldProblem[] = err instanceof HttpError || err instanceof ModelError ? err.errors : err.validation ? err.validation.map(fieldProblem) : [];
    return reply.code(status).send({ statusCode: status, error: httpReason(status), message, ...(errors.length ? { errors } : {}) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${req.method} ${req.url} (the API is described at ${OPENAPI_PATH})` }));

  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (path.startsWith('/api/v1/') && path !== OPENAPI_PATH) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m) throw new HttpError(401, 'admin token required: send "Authorization: Bearer TOKEN" (the CLI: --token, FLEETCAST_TOKEN, or the admin-token file in the data folder)');
      if (!(await ctx.auth.verify(m[1]!))) throw new HttpError(401, 'the admin token is not valid for this server');
    } else if ((path.startsWith('/api/client/') || path.startsWith('/content/')) && ctx.config.clientSecret) {
      const given = req.headers[CLIENT_SECRET_HEADER];
      const ok = typeof given === 'string' && given.length === ctx.config.clientSecret.length && timingSafeEqual(Buffer.from(given), Buffer.from(ctx.config.clientSecret));
      if (!ok) throw new HttpError(401, `this distribution point requires its client enrollment secret (header ${CLIENT_SECRET_HEADER}; fleetcast fetch --client-secret)`);
    }
  });

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  adminRoutes(app, ctx);
  clientRoutes(app, ctx);
  deployAdminRoutes(app, ctx);
  deployClientRoutes(app, ctx);
  await consoleRoutes(app);
  return app;
}

/** What Ajv reports for one schema violation. */
interface SchemaViolation {
  instancePath: string;
  message?: string;
  params: { additionalProperty?: string; missingProperty?: string };
}

/** A schema violation as a problem at its path: "portStart must be >= 1024" at /portStart. */
function fieldProblem(v: SchemaViolation): FieldProblem {
  const named = v.params.additionalProperty ?? v.params.missingProperty;
  const path = named === undefined ? v.instancePath : `${v.instancePath}/${named}`;
  const what = v.params.additionalProperty ? `${v.message ?? 'is not allowed'}: ${named}` : (v.message ?? 'is invalid');
  const field = v.instancePath.split('/').pop();
  return { path, message: field && named === undefined ? `${field} ${what}` : what };
}

function httpReason(status: number): string {
  return (
    {
      400: 'Bad Request',
      401: 'Unauthorized',
      404: 'Not Found',
      409: 'Conflict',
      415: 'Unsupported Media Type',
      416: 'Range Not Satisfiable',
      503: 'Service Unavailable',
    } as Record<number, string>
  )[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
}
