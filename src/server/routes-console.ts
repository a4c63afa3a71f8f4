// The admin web console: static files built from src/web into dist/web, served at /console/assets/, and the
// console's page (index.html) at / and every other /console/... path, so that a page's address can be
// bookmarked or reloaded (the browser-side router picks the page). The console talks to the admin API with
// the token the administrator signs in with; nothing here needs the token.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';

export const CONSOLE_PATH = '/console/';
export const CONSOLE_ASSETS_PATH = '/console/assets/';

/** dist/web, next to dist/src (this file runs as dist/src/server/routes-console.js). */
const CONSOLE_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
const INDEX = 'index.html';

/**
 * Scripts, styles and data only from this server; no inline code, no framing, no plugins, forms post only
 * here. The console builds its pages with DOM calls, never from HTML strings, so it needs no exceptions.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: { header(name: string, value: string): unknown }): void {
  reply.header('content-security-policy', CONSOLE_CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  // The files of one build import each other: a browser must never mix two builds, so it revalidates every
  // file (cheap: ETag / Last-Modified answer 304) instead of caching by age.
  reply.header('cache-control', 'no-cache');
}

export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  const built = existsSync(`${CONSOLE_ROOT}${INDEX}`);
  await app.register(fastifyStatic, {
    root: CONSOLE_ROOT,
    prefix: CONSOLE_ASSETS_PATH,
    index: false,
    list: false,
    dotfiles: 'deny',
    cacheControl: false,
    setHeaders: (res) => secure({ header: (name, value) => res.setHeader(name, value) }),
  });

  const page = async (_req: unknown, reply: FastifyReply) => {
    if (!built) {
      return reply.code(503).type('text/plain; charset=utf-8').send(`the web console is not built (${CONSOLE_ROOT}${INDEX} is missing): run npm run build`);
    }
    secure(reply);
    return reply.type('text/html; charset=utf-8').sendFile(INDEX);
  };
  app.get('/', { schema: { hide: true } }, page);
  app.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect(CONSOLE_PATH));
  app.get('/console/*', { schema: { hide: true } }, page);
}
