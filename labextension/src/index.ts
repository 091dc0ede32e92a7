/**
 * jupyterlite-rayon front end: wires the plugin. Each concern has its module:
 * - waitasync.ts: a fix pyodide-kernel 0.8.6 needs on isolated pages (applied at load);
 * - isolation.ts: isolated or not, the fix per host, the one service-worker reload;
 * - notice.ts: the toast and the "How to fix" dialog on pages that are not isolated;
 * - interrupt.ts: interrupts into running pool calls, and the pools' announcements;
 * - kernelfail.ts: a kernel that could not load is said so, not left spinning at "Busy";
 * - counters.ts: the pool's counters block, decoded from the generated abi.ts;
 * - pools.ts: one reading of the pools per tick, and which kernel a page node belongs to;
 * - statusbar.ts: isolation and the current notebook's pool in the status bar;
 * - widgetview.ts: the pool widget's live part (counters drawn by the page during calls).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';

import { KernelBridge } from './interrupt.js';
import { reloadOnceIfIsolatable } from './isolation.js';
import { warnUnlessIsolated } from './notice.js';
import { PoolTicker } from './pools.js';
import { RayonStatus } from './statusbar.js';
import { fixWaitAsync } from './waitasync.js';
import { WidgetLiveView } from './widgetview.js';

export { decodeCounters } from './counters.js';
export { fixForHost, isolation } from './isolation.js';

const PLUGIN_ID = 'jupyterlite-rayon:plugin';

// At module load: before the kernel's chunk captures Atomics.waitAsync.
fixWaitAsync();

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Cross-origin isolation status, the one service-worker reload and interrupts for jupyterlite-rayon',
  autoStart: true,
  optional: [IStatusBar],
  activate: (app: JupyterFrontEnd, statusBar: IStatusBar | null) => {
    const bridge = new KernelBridge(app, PLUGIN_ID);
    bridge.start();
    const ticker = new PoolTicker(bridge);
    new WidgetLiveView(app, ticker);
    const status = new RayonStatus(app, bridge.failures.reasons, ticker);
    if (statusBar) {
      statusBar.registerStatusItem(PLUGIN_ID, { item: status, align: 'left', rank: 1000 });
    } else {
      // The Notebook view (/notebooks/) has no status bar: the item goes in its top bar.
      status.addClass('jr-status-top');
      app.shell.add(status, 'top', { rank: 1000 });
    }
    void app.restored.then(async () => {
      if (!(await reloadOnceIfIsolatable())) {
        warnUnlessIsolated();
      }
    });
  }
};

export default plugin;
