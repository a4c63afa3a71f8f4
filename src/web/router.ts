// A small client-side router: one module per page, loaded when first shown; addresses under /console/ that
// can be bookmarked and reloaded (the server answers every /console/ path with the console's page); links
// handled without reloading; a page's timers and requests end when the administrator leaves it.
import type { Api } from './api.js';
import { ApiError } from './api.js';
import { h, notice, type Child } from './dom.js';

export interface PageContext {
  api: Api;
  /** Path parameters, e.g. { name } for /console/images/:name. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Aborted when the page is left: pass it to requests; listeners may watch it. */
  signal: AbortSignal;
  navigate(path: string, flash?: string): void;
  /**
   * Runs `task` now (or first after `ms` when `startNow` is false) and then every `ms` after each run ends
   * (never overlapping), paused while the tab is hidden, until the page is left. A failed run shows a banner
   * that the next success removes.
   */
  every(ms: number, task: () => Promise<void>, startNow?: boolean): void;
}

export interface PageModule {
  title: string | ((params: Record<string, string>) => string);
  render(main: HTMLElement, ctx: PageContext): Promise<void>;
}

export interface Route {
  /** "/console/images/:name": ":x" matches one path segment. */
  path: string;
  load: () => Promise<PageModule>;
  /** Shown in the main navigation with this label. */
  nav?: string;
}

export const CONSOLE_ROOT = '/console/';

const trimmed = (path: string) => path.replace(/\/+$/, '');

/** The route's parameters when it matches the path (a trailing slash does not matter), else null. */
function match(route: Route, path: string): Record<string, string> | null {
  const want = trimmed(route.path).split('/');
  const got = trimmed(path).split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (w.startsWith(':') && g) params[w.slice(1)] = decodeURIComponent(g);
    else if (w !== g) return null;
  }
  return params;
}

export class Router {
  private current: AbortController | null = null;
  private flash: string | null = null;
  private renders = 0;

  constructor(
    private readonly routes: Route[],
    private readonly main: HTMLElement,
    private readonly nav: HTMLElement,
    private readonly api: Api,
  ) {}

  start(): void {
    this.nav.replaceChildren(
      h('ul', null, this.routes.filter((r) => r.nav).map((r) => h('li', null, h('a', { href: r.path }, r.nav!)))),
    );
    document.addEventListener('click', this.onClick);
    window.addEventListener('popstate', this.onPopState);
    if (location.pathname === '/' || location.pathname === '/console') history.replaceState(null, '', CONSOLE_ROOT);
    void this.show();
  }

  stop(): void {
    document.removeEventListener('click', this.onClick);
    window.removeEventListener('popstate', this.onPopState);
    this.current?.abort();
    this.current = null;
  }

  navigate(path: string, flash?: string): void {
    this.flash = flash ?? null;
    history.pushState(null, '', path);
    void this.show();
  }

  private readonly onPopState = () => void this.show();

  private readonly onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(CONSOLE_ROOT)) return;
    e.preventDefault();
    this.navigate(url.pathname + url.search);
  };

  private async show(): Promise<void> {
    this.current?.abort();
    const controller = new AbortController();
    this.current = controller;
    const path = location.pathname;
    let route: Route | undefined;
    let params: Record<string, string> = {};
    for (const r of this.routes) {
      const m = match(r, path);
      if (m) {
        route = r;
        params = m;
        break;
      }
    }
    for (const a of this.nav.querySelectorAll('a')) {
      const href = a.getAttribute('href')!;
      const active = href === CONSOLE_ROOT ? trimmed(path) === trimmed(href) : trimmed(path) === href || path.startsWith(`${href}/`);
      if (active) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const flash = this.flash;
    this.flash = null;
    const firstRender = this.renders++ === 0;
    if (!route) {
      this.render(controller, 'Not found', [h('h1', { tabindex: -1 }, 'Page not found'), h('p', null, `There is no console page at ${path}. `, h('a', { href: CONSOLE_ROOT }, 'Go to the dashboard'), '.')], firstRender);
      return;
    }
    let page: PageModule;
    try {
      page = await route.load();
    } catch (err) {
      if (controller.signal.aborted) return;
      this.render(controller, 'Error', [h('h1', { tabindex: -1 }, 'The page could not be loaded'), notice('error', `${(err as Error).message}. Reload the page; if the server was upgraded, its files changed.`)], firstRender);
      return;
    }
    if (controller.signal.aborted) return;
    const title = typeof page.title === 'function' ? page.title(params) : page.title;
    const container = h('div', { class: 'page' });
    const banner = h('div', { class: 'banner', 'aria-live': 'polite' });
    this.render(controller, title, [banner, flash ? notice('ok', flash) : null, container], false);
    const ctx: PageContext = {
      api: this.api,
      params,
      query: new URLSearchParams(location.search),
      signal: controller.signal,
      navigate: (p, f) => this.navigate(p, f),
      every: (ms, task, startNow = true) => poll(ms, task, controller.signal, banner, startNow),
    };
    try {
      await page.render(container, ctx);
    } catch (err) {
      if (controller.signal.aborted || (err instanceof ApiError && err.status === 401)) return;
      container.append(notice('error', (err as Error).message));
    }
    if (controller.signal.aborted) return;
    // Keyboard and screen-reader users land on the new page's heading (not on a first load: the browser's place).
    const heading = container.querySelector('h1');
    if (heading) heading.tabIndex = -1;
    if (!firstRender) heading?.focus();
  }

  private render(controller: AbortController, title: string, children: Child[], focus: boolean): void {
    if (controller.signal.aborted) return;
    document.title = `${title} — fleetcast console`;
    this.main.replaceChildren(h('div', null, children));
    for (const h1 of this.main.querySelectorAll('h1')) h1.tabIndex = -1;
    if (focus) this.main.querySelector<HTMLElement>('h1')?.focus();
  }
}

function poll(ms: number, task: () => Promise<void>, signal: AbortSignal, banner: HTMLElement, startNow: boolean): void {
  let timer: number | undefined;
  const run = async () => {
    timer = undefined;
    if (signal.aborted) return;
    if (document.hidden) {
      document.addEventListener('visibilitychange', run, { once: true });
      return;
    }
    try {
      await task();
      banner.replaceChildren();
    } catch (err) {
      if (signal.aborted || (err instanceof ApiError && err.status === 401)) return;
      banner.replaceChildren(notice('error', `Could not refresh: ${(err as Error).message}`));
    }
    if (!signal.aborted) timer = window.setTimeout(run, ms);
  };
  signal.addEventListener('abort', () => {
    if (timer !== undefined) clearTimeout(timer);
    document.removeEventListener('visibilitychange', run);
  });
  if (startNow) void run();
  else timer = window.setTimeout(run, ms);
}
