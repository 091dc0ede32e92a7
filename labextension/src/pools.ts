/**
 * One reading of every kernel's pool per tick, shared by the status bar and the pool widgets'
 * live view, so both always show the same counters; and which kernel a page node belongs to.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';

import { KernelBridge, PoolReading } from './interrupt.js';

/** Readings a few times a second: enough to watch the cores work, cheap to decode. */
export const TICK_MS = 200;

export type Readings = Map<string, PoolReading>;

export class PoolTicker {
  private readonly listeners: ((readings: Readings) => void)[] = [];
  readings: Readings = new Map();

  constructor(private readonly bridge: KernelBridge) {
    window.setInterval(() => this.tick(), TICK_MS);
  }

  /** Call `listener` with every tick's readings (and once now). */
  subscribe(listener: (readings: Readings) => void): void {
    this.listeners.push(listener);
    listener(this.readings);
  }

  tick(): void {
    this.readings = new Map(this.bridge.read().map(r => [r.kernel, r]));
    for (const listener of this.listeners) {
      listener(this.readings);
    }
  }
}

/** The id of the kernel of a shell widget (a notebook or console panel), if it has one. */
export function kernelOf(widget: any): string | null {
  return widget?.sessionContext?.session?.kernel?.id ?? null;
}

/** The kernel of the main-area widget (notebook) holding `node`, in JupyterLab and Notebook. */
export function kernelOfNode(app: JupyterFrontEnd, node: Node): string | null {
  for (const widget of Array.from(app.shell.widgets('main'))) {
    if (widget.node.contains(node)) {
      return kernelOf(widget);
    }
  }
  return null;
}
