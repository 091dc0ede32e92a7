/**
 * jupyterlite-rayon front end.
 *
 * - Cross-origin isolation: threads need SharedArrayBuffer, which exists only on isolated
 *   pages. A site built with `RayonAddon.service_worker` gets COOP/COEP from JupyterLite's own
 *   service worker, which only applies once the worker controls the page: reload ONCE then
 *   (sessionStorage guards against loops).
 * - A status bar item: isolated or not, and the pool's threads/busy once a kernel announces it.
 * - A notification with the fix when the page is not isolated.
 * - Interrupts: the pool's kernel announces an interrupt buffer; an interrupt stores SIGINT in it,
 *   since pyodide-kernel 0.8.6 gives Pyodide none.
 * - A fix for pyodide-kernel 0.8.6 on isolated pages (see fixWaitAsync).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

const PLUGIN_ID = 'jupyterlite-rayon:plugin';
const RELOAD_KEY = 'jupyterlite-rayon:isolation-reload';
const INTERRUPT_MESSAGE = 'jupyterlite-rayon:interrupt-buffer';
const POOL_MESSAGE = 'jupyterlite-rayon:pool';
const KERNEL_CLIENT_PLUGIN = '@jupyterlite/services-extension:kernel-client';
const SIGINT = 2;
const FIX =
  'Serve the site with the headers Cross-Origin-Opener-Policy: same-origin and ' +
  'Cross-Origin-Embedder-Policy: require-corp (jupyter lite serve, Netlify/Cloudflare ' +
  '_headers and vercel.json do this when the site is built with jupyterlite-rayon), or ' +
  'build it with `jupyter lite build --rayon-service-worker` for hosts without headers ' +
  '(GitHub Pages).';

/**
 * pyodide-kernel 0.8.6 talks to its worker through coincident when the page is isolated, and
 * coincident assumes Atomics.waitAsync always answers asynchronously. When the worker replies
 * before the page waits, waitAsync answers synchronously ({async: false, value: 'not-equal'}),
 * the call throws "value.then is not a function" and the kernel hangs. Give such answers a
 * promise. Runs at module load, before the kernel's chunk captures Atomics.waitAsync.
 */
function fixWaitAsync(): void {
  const atomics = Atomics as any;
  const waitAsync = atomics.waitAsync;
  if (typeof waitAsync !== 'function' || waitAsync.__jrFixed) {
    return;
  }
  const fixed = function (...args: unknown[]) {
    const result = waitAsync.apply(Atomics, args);
    return result.async
      ? result
      : { async: false, value: Promise.resolve(result.value) };
  };
  (fixed as any).__jrFixed = true;
  atomics.waitAsync = fixed;
}
fixWaitAsync();

/** What the page can do for threads, and why not. */
export interface IIsolation {
  isolated: boolean;
  reason: string;
}

export function isolation(): IIsolation {
  if (window.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined') {
    return { isolated: true, reason: 'cross-origin isolated' };
  }
  const reloaded = sessionStorage.getItem(RELOAD_KEY) !== null;
  return {
    isolated: false,
    reason: reloaded
      ? 'not cross-origin isolated, even after reloading under the service worker'
      : 'not cross-origin isolated: the server sends no COOP/COEP headers'
  };
}

async function controllingWorker(
  timeoutMs: number
): Promise<ServiceWorker | null> {
  const sw = navigator.serviceWorker;
  if (sw.controller) {
    return sw.controller;
  }
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(sw.controller), timeoutMs);
    sw.addEventListener('controllerchange', () => {
      clearTimeout(timer);
      resolve(sw.controller);
    });
  });
}

/**
 * Reload once if a service worker now controls the page and serves it with COOP/COEP, i.e. the
 * site was built with RayonAddon.service_worker. Returns true if a reload was started.
 */
export async function reloadOnceIfIsolatable(): Promise<boolean> {
  if (window.crossOriginIsolated) {
    // Isolated: forget the guard so a later visit in this tab may reload once again.
    sessionStorage.removeItem(RELOAD_KEY);
    return false;
  }
  if (
    !('serviceWorker' in navigator) ||
    sessionStorage.getItem(RELOAD_KEY) !== null
  ) {
    return false;
  }
  const worker = await controllingWorker(30000);
  if (!worker) {
    return false;
  }
  // Ask the worker for this page again: a patched worker answers with the isolation headers.
  const response = await fetch(window.location.href, { cache: 'no-store' });
  const coop = response.headers.get('Cross-Origin-Opener-Policy');
  const coep = response.headers.get('Cross-Origin-Embedder-Policy');
  if (
    coop !== 'same-origin' ||
    !(coep === 'require-corp' || coep === 'credentialless')
  ) {
    return false;
  }
  sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
  window.location.reload();
  return true;
}

/** A pool announced by a kernel: its shared memory and the counters block's address. */
interface IPool {
  buffer: SharedArrayBuffer;
  counters: number;
}

/** Live pool numbers read from the counters block (kernels/ABI.md), no message needed. */
export function readPool(pool: IPool): { threads: number; busy: number } {
  const words = new Uint32Array(pool.buffer, pool.counters, 8);
  return { threads: Atomics.load(words, 2), busy: Atomics.load(words, 3) };
}

/**
 * Watch in-browser kernels' workers for the pool's messages: the interrupt buffer (so an
 * interrupt reaches running pool calls) and the pool's counters (for the status bar).
 */
class KernelBridge {
  readonly buffers = new Map<string, Int32Array>();
  readonly pools = new Map<string, IPool>();
  private client: any;
  private timer = 0;

  constructor(app: JupyterFrontEnd) {
    const registry = (app as any).pluginRegistry ?? app;
    const plugins = registry._plugins ?? registry._pluginMap;
    const data = plugins?.get?.(KERNEL_CLIENT_PLUGIN);
    this.client = data?.service;
  }

  get available(): boolean {
    return !!(
      this.client?._kernels && typeof this.client.interrupt === 'function'
    );
  }

  start(): void {
    if (!this.available || (window as any).__jrInterruptBridge) {
      return;
    }
    const interrupt = this.client.interrupt.bind(this.client);
    this.client.interrupt = async (id: string) => {
      const buffer = this.buffers.get(id);
      if (buffer) {
        Atomics.store(buffer, 0, SIGINT);
      }
      return interrupt(id);
    };
    this.timer = window.setInterval(() => this.watch(), 250);
    this.watch();
    (window as any).__jrInterruptBridge = {
      buffers: this.buffers,
      pools: this.pools,
      stop: () => clearInterval(this.timer)
    };
  }

  private watch(): void {
    const kernels = this.client._kernels;
    for (const id of Array.from(kernels.keys()) as string[]) {
      const worker = kernels.get(id)?._worker;
      if (!worker || worker.__jrWatched) {
        continue;
      }
      worker.__jrWatched = true;
      worker.addEventListener('message', (event: MessageEvent) => {
        const data = event.data;
        if (data?.type === INTERRUPT_MESSAGE) {
          this.buffers.set(id, data.buffer);
        } else if (data?.type === POOL_MESSAGE) {
          this.pools.set(id, { buffer: data.buffer, counters: data.counters });
        }
      });
    }
    for (const id of Array.from(this.pools.keys())) {
      if (!kernels.has(id)) {
        this.pools.delete(id);
        this.buffers.delete(id);
      }
    }
  }
}

/** The status bar item: isolation, then threads and busy of the running pools. */
class RayonStatus extends Widget {
  constructor(private bridge: KernelBridge) {
    super();
    this.addClass('jr-status');
    this.id = 'jupyterlite-rayon-status';
    this.update();
    window.setInterval(() => this.update(), 500);
  }

  update(): void {
    const state = isolation();
    this.toggleClass('jr-isolated', state.isolated);
    this.toggleClass('jr-not-isolated', !state.isolated);
    let text = state.isolated
      ? 'rayon: isolated'
      : 'rayon: not isolated (1 thread)';
    const pools = Array.from(this.bridge.pools.values());
    if (pools.length) {
      const counts = pools.map(readPool);
      const threads = counts.reduce((n, c) => n + c.threads, 0);
      const busy = counts.reduce((n, c) => n + c.busy, 0);
      text += ` · ${threads} thread${threads === 1 ? '' : 's'}, ${busy} busy`;
    }
    if (this.node.textContent !== text) {
      this.node.textContent = text;
    }
    this.node.title = state.isolated ? state.reason : `${state.reason}. ${FIX}`;
    this.node.dataset.isolated = String(state.isolated);
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Cross-origin isolation status, the one service-worker reload and interrupts for jupyterlite-rayon',
  autoStart: true,
  optional: [IStatusBar],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar | null) => {
    const bridge = new KernelBridge(app);
    bridge.start();
    if (statusBar) {
      statusBar.registerStatusItem(PLUGIN_ID, {
        item: new RayonStatus(bridge),
        align: 'left',
        rank: 1000
      });
    }
    void app.restored.then(async () => {
      if (await reloadOnceIfIsolatable()) {
        return;
      }
      const state = isolation();
      if (!state.isolated) {
        // Toasts cut long text: the short reason here, the fix behind the action.
        Notification.warning(
          'jupyterlite-rayon runs on one thread: this page is not cross-origin isolated.',
          {
            autoClose: false,
            actions: [
              {
                label: 'How to fix',
                callback: () => {
                  void showDialog({
                    title: 'Threads need a cross-origin isolated page',
                    body: `This page is ${state.reason}. ${FIX}`,
                    buttons: [Dialog.okButton()]
                  });
                }
              }
            ]
          }
        );
      }
    });
  }
};

export default plugin;
