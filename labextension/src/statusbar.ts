/**
 * The status bar item: isolation, then the pool of the current notebook's kernel (threads,
 * busy). With other kernels' pools open it says how many, plainly, instead of summing them
 * into one pool that does not exist.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Widget } from '@lumino/widgets';

import { ICounters } from './counters.js';
import { fixForHost, isolation } from './isolation.js';
import { failureText } from './kernelfail.js';
import { PoolTicker, Readings, kernelOf } from './pools.js';

function threadsText(n: number): string {
  return `${n} thread${n === 1 ? '' : 's'}`;
}

export class RayonStatus extends Widget {
  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly failures: Map<string, string>,
    ticker: PoolTicker
  ) {
    super();
    this.addClass('jr-status');
    this.id = 'jupyterlite-rayon-status';
    ticker.subscribe(readings => this.render(readings));
  }

  render(readings: Readings): void {
    const state = isolation();
    this.toggleClass('jr-isolated', state.isolated);
    this.toggleClass('jr-not-isolated', !state.isolated);
    let text = state.isolated ? 'rayon: isolated' : 'rayon: not isolated (1 thread)';
    let title = state.isolated
      ? state.reason
      : `${state.reason}. ${fixForHost(window.location.hostname)}`;
    const pools = new Map<string, ICounters>();
    for (const r of readings.values()) {
      if ('counters' in r) {
        pools.set(r.kernel, r.counters);
      } else {
        title += `\nkernel ${r.kernel}: ${r.error}`;
      }
    }
    const current = kernelOf(this.app.shell.currentWidget);
    const mine = current ? pools.get(current) : undefined;
    const failed = current ? this.failures.get(current) : undefined;
    if (failed) {
      text += ' · the kernel could not load';
      title += `\n${failureText(failed)}`;
    }
    const others = Array.from(pools.entries()).filter(([k]) => k !== current);
    if (mine) {
      text += ` · ${threadsText(mine.threads)}, ${mine.busy} busy`;
      if (others.length) {
        text += ` (+${others.length} other kernel${others.length === 1 ? '' : 's'})`;
      }
    } else if (pools.size) {
      const threads = others.reduce((n, [, c]) => n + c.threads, 0);
      const busy = others.reduce((n, [, c]) => n + c.busy, 0);
      text += ` · ${pools.size} kernel${pools.size === 1 ? '' : 's'}, ${threadsText(threads)}, ${busy} busy`;
    }
    for (const [kernel, c] of pools) {
      const here = kernel === current ? ' (this notebook)' : '';
      title += `\nkernel ${kernel}${here}: ${threadsText(c.threads)}, ${c.busy} busy`;
    }
    if (this.node.textContent !== text) {
      this.node.textContent = text;
    }
    this.node.title = title;
    this.node.dataset.isolated = String(state.isolated);
    this.node.dataset.kernel = mine ? current! : '';
  }
}
