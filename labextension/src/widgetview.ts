/**
 * The pool widget's live part, drawn by the page. In JupyterLite the kernel's worker is blocked
 * during a pool call, so the widget's Python side can only refresh between calls; the page reads
 * the same counters as the status bar (one PoolTicker reading) and writes them into the widget's
 * DOM: the busy/tasks/steals/calls fields (`data-jr-field`), each thread's bar and label, and a
 * line with the running call's elapsed time. Python's own refreshes are overwritten with the
 * page's latest reading at once, so widget and status bar never disagree.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';

import { ICounters } from './counters.js';
import { PoolTicker, Readings, TICK_MS, kernelOfNode } from './pools.js';

// The classes jupyterlite_rayon/notebook/widget.py gives its parts.
const WIDGET = '.jr-pool-widget';
const BARS = '.jr-pool-bars';
const LIVE = '.jr-pool-live';
const THREAD_LABEL = '.jr-thread-label';

/** When the page saw the kernel's running call start (to within one tick), and the last one. */
interface ICallClock {
  inCall: boolean;
  started: number;
  lastSeconds: number | null;
  tasks: number[];
  shares: number[];
}

function setText(node: Element | null, text: string): void {
  if (node && node.textContent !== text) {
    node.textContent = text;
  }
}

export class WidgetLiveView {
  private readonly clocks = new Map<string, ICallClock>();
  private readonly watched = new WeakSet<Element>();
  private readings: Readings = new Map();

  constructor(
    private readonly app: JupyterFrontEnd,
    ticker: PoolTicker
  ) {
    ticker.subscribe(readings => this.update(readings));
  }

  private update(readings: Readings): void {
    this.readings = readings;
    const now = performance.now();
    for (const [kernel, reading] of readings) {
      if ('counters' in reading) {
        this.advance(kernel, reading.counters, now);
      }
    }
    for (const view of Array.from(document.querySelectorAll(WIDGET))) {
      if (!this.watched.has(view)) {
        this.watched.add(view);
        // Python rewrote a part (after a call): show the page's reading there again.
        new MutationObserver(() => this.draw(view)).observe(view, {
          subtree: true,
          childList: true,
          characterData: true
        });
      }
      this.draw(view);
    }
  }

  /** Follow the kernel's calls from one reading to the next. */
  private advance(kernel: string, c: ICounters, now: number): void {
    let clock = this.clocks.get(kernel);
    if (!clock) {
      clock = { inCall: false, started: now, lastSeconds: null, tasks: [], shares: [] };
      this.clocks.set(kernel, clock);
    }
    const inCall = c.in_call !== 0;
    if (inCall && !clock.inCall) {
      clock.started = now - TICK_MS / 2; // it began since the last reading
    } else if (!inCall && clock.inCall) {
      clock.lastSeconds = (now - clock.started) / 1000;
    }
    clock.inCall = inCall;
    const tasks = c.per_thread.map(t => t.tasks);
    const deltas = tasks.map((t, i) => Math.max(t - (clock!.tasks[i] ?? t), 0));
    const busiest = Math.max(0, ...deltas);
    if (busiest > 0) {
      clock.shares = deltas.map(d => d / busiest);
    }
    clock.tasks = tasks;
  }

  private draw(view: Element): void {
    const kernel = kernelOfNode(this.app, view);
    const reading = kernel ? this.readings.get(kernel) : undefined;
    if (!kernel || !reading || !('counters' in reading)) {
      return; // no pool announced by this kernel: Python's panel is all there is
    }
    const c = reading.counters;
    const clock = this.clocks.get(kernel);
    const sum = (field: string) => c.per_thread.reduce((n, t) => n + Number(t[field]), 0);
    const fields: Record<string, number> = {
      busy: c.busy,
      tasks: sum('tasks'),
      steals: sum('steals'),
      calls: Number(c.calls)
    };
    for (const [name, value] of Object.entries(fields)) {
      setText(view.querySelector(`[data-jr-field="${name}"]`), String(value));
    }
    const rows = Array.from(view.querySelector(BARS)?.children ?? []);
    rows.forEach((row, i) => {
      const t = c.per_thread[i];
      if (!t) {
        return;
      }
      // The format of widget.py's labels.
      setText(row.querySelector(THREAD_LABEL), `${t.state}, ${t.tasks} tasks, ${t.steals} steals`);
      const bar = row.querySelector('.progress-bar') as HTMLElement | null;
      if (bar && clock?.inCall) {
        const width = `${Math.round((clock.shares[i] ?? 0) * 100)}%`;
        if (bar.style.width !== width) {
          bar.style.width = width;
        }
        const working = t.state === 'working';
        bar.classList.toggle('progress-bar-success', working);
        bar.classList.toggle('progress-bar-info', !working);
      }
    });
    let live: string;
    if (clock?.inCall) {
      const seconds = (performance.now() - clock.started) / 1000;
      live = `live: a call is running, ${seconds.toFixed(1)} s, ${c.busy} of ${c.threads} threads busy`;
    } else {
      const last = clock?.lastSeconds;
      live =
        `live: idle, ${c.threads} thread${c.threads === 1 ? '' : 's'}` +
        (last != null ? `; the last call seen running took ${last.toFixed(1)} s` : '');
    }
    const line = view.querySelector(LIVE);
    setText(line, live);
    line?.setAttribute('data-jr-in-call', String(!!clock?.inCall));
  }
}
