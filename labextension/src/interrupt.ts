/**
 * The page side of the pool's kernel messages. pyodide-kernel 0.8.6 gives Pyodide no interrupt
 * buffer, so the pool's Pyodide backend makes one, posts it to the page and makes it Pyodide's
 * while cells run; an interrupt of that kernel then stores SIGINT into it, which stops running
 * pool calls and pure Python alike. A threaded pool also posts its memory and counters address,
 * which the status bar and the pool widgets read.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';

import { decodeCounters, ICounters } from './counters.js';
import { KernelFailures } from './kernelfail.js';

// The message types of jupyterlite_rayon/backends/pyodide_backend.py.
const INTERRUPT_MESSAGE = 'jupyterlite-rayon:interrupt-buffer';
const POOL_MESSAGE = 'jupyterlite-rayon:pool';
const KERNEL_CLIENT_PLUGIN = '@jupyterlite/services-extension:kernel-client';
const SIGINT = 2;
const WATCH_MS = 250;

/** A pool announced by a kernel: its shared memory and the counters block's address. */
export interface IPool {
  buffer: SharedArrayBuffer;
  counters: number;
}

/** One kernel's pool, decoded, or why it could not be. */
export type PoolReading = { kernel: string } & (
  | { counters: ICounters }
  | { error: string }
);

/**
 * Watches in-browser kernels' workers for the pool's messages and routes interrupts into the
 * announced buffers. Published as window.__jrInterruptBridge (tests and users can see which
 * bridge is active, and read the pools as the status bar does).
 */
export class KernelBridge {
  readonly buffers = new Map<string, Int32Array>();
  readonly pools = new Map<string, IPool>();
  readonly failures = new KernelFailures();
  private client: any;
  private timer = 0;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly source: string
  ) {
    const registry = (app as any).pluginRegistry ?? app;
    const plugins = registry._plugins ?? registry._pluginMap;
    this.client = plugins?.get?.(KERNEL_CLIENT_PLUGIN)?.service;
  }

  get available(): boolean {
    return !!(
      this.client?._kernels && typeof this.client.interrupt === 'function'
    );
  }

  /** Start watching; false (and a console warning saying why) when it cannot. */
  start(): boolean {
    const existing = (window as any).__jrInterruptBridge;
    if (existing) {
      console.warn(
        `jupyterlite-rayon: an interrupt bridge (${existing.source}) is already active; ` +
          'not installing a second one'
      );
      return false;
    }
    if (!this.available) {
      console.warn(
        `jupyterlite-rayon: the in-browser kernel client (${KERNEL_CLIENT_PLUGIN}) was not ` +
          'found, so interrupts cannot reach running pool calls and the status bar shows no ' +
          'pool: this JupyterLite version is not supported by this jupyterlite-rayon'
      );
      return false;
    }
    const interrupt = this.client.interrupt.bind(this.client);
    this.client.interrupt = async (id: string) => {
      const buffer = this.buffers.get(id);
      if (buffer) {
        Atomics.store(buffer, 0, SIGINT);
      }
      return interrupt(id);
    };
    this.timer = window.setInterval(() => this.watch(), WATCH_MS);
    this.watch();
    (window as any).__jrInterruptBridge = {
      source: this.source,
      buffers: this.buffers,
      pools: this.pools,
      failures: this.failures.reasons,
      read: () => this.read(),
      stop: () => clearInterval(this.timer)
    };
    return true;
  }

  /** Every announced pool's counters, decoded now. */
  read(): PoolReading[] {
    return Array.from(this.pools.entries(), ([kernel, pool]) => {
      try {
        return { kernel, counters: decodeCounters(pool.buffer, pool.counters) };
      } catch (err) {
        return { kernel, error: String((err as Error)?.message ?? err) };
      }
    });
  }

  private watch(): void {
    const kernels = this.client._kernels;
    // A Map or a lumino ObservableMap: keys() is an iterator or an array.
    for (const id of Array.from(kernels.keys()) as string[]) {
      this.failures.watch(id, kernels.get(id));
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
    // A kernel that reported idle has loaded; one that never does is reported after a while.
    for (const widget of Array.from(this.app.shell.widgets('main'))) {
      const kernel = (widget as any)?.sessionContext?.session?.kernel;
      if (kernel?.status === 'idle') {
        this.failures.idle(kernel.id);
      }
    }
    this.failures.check();
    // Forget kernels that are gone (shut down or restarted under a new id).
    this.failures.forgetExcept(new Set(Array.from(kernels.keys()) as string[]));
    for (const map of [this.pools, this.buffers]) {
      for (const id of Array.from(map.keys())) {
        if (!kernels.has(id)) {
          map.delete(id);
        }
      }
    }
  }
}
