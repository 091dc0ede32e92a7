/** The status bar item: isolation, then threads and busy of the kernels' pools. */
import { Widget } from '@lumino/widgets';

import { KernelBridge } from './interrupt.js';
import { fixForHost, isolation } from './isolation.js';

const UPDATE_MS = 500;

export class RayonStatus extends Widget {
  constructor(private readonly bridge: KernelBridge) {
    super();
    this.addClass('jr-status');
    this.id = 'jupyterlite-rayon-status';
    this.update();
    window.setInterval(() => this.update(), UPDATE_MS);
  }

  update(): void {
    const state = isolation();
    this.toggleClass('jr-isolated', state.isolated);
    this.toggleClass('jr-not-isolated', !state.isolated);
    let text = state.isolated
      ? 'rayon: isolated'
      : 'rayon: not isolated (1 thread)';
    let title = state.isolated
      ? state.reason
      : `${state.reason}. ${fixForHost(window.location.hostname)}`;
    const readings = this.bridge.read();
    const pools = readings.flatMap(r => ('counters' in r ? [r.counters] : []));
    if (pools.length) {
      const threads = pools.reduce((n, c) => n + c.threads, 0);
      const busy = pools.reduce((n, c) => n + c.busy, 0);
      text += ` · ${threads} thread${threads === 1 ? '' : 's'}, ${busy} busy`;
    }
    for (const r of readings) {
      if ('error' in r) {
        title += `\nkernel ${r.kernel}: ${r.error}`;
      }
    }
    if (this.node.textContent !== text) {
      this.node.textContent = text;
    }
    this.node.title = title;
    this.node.dataset.isolated = String(state.isolated);
  }
}
