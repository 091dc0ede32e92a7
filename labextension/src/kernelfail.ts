/**
 * When an in-browser kernel cannot load (Pyodide or a start-up wheel missing, e.g. a site that
 * needs the internet opened offline), pyodide-kernel 0.8.6 logs it in the worker only, its
 * `ready` resolves all the same, and the notebook spins at "Busy". The page says so instead:
 * when a kernel starts it checks that the site's Pyodide can be fetched, and a kernel that has
 * not answered within START_LIMIT_S is reported too; each as a notification with what to do,
 * the reason kept for the status bar.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';

const PYODIDE_PLUGIN = '@jupyterlite/pyodide-kernel-extension:kernel';
/** A kernel still not idle this long after it was created has most likely failed to load. */
export const START_LIMIT_S = 90;

const WHAT_TO_DO =
  'If the site needs the internet (Pyodide from its CDN, wheels from PyPI), open it online, ' +
  'or rebuild it self-contained (RayonAddon.self_contained = true: Pyodide and every start-up ' +
  'wheel served from the site); `jupyter lite check` says where each one comes from.';

/** The message the page shows for a kernel that failed to load. */
export function failureText(reason: string): string {
  return `The Python kernel could not load: ${reason}. ${WHAT_TO_DO}`;
}

/** The site's Pyodide URL (jupyter-lite.json), absolute; null when it is not configured. */
export function pyodideUrl(): string | null {
  try {
    const settings = JSON.parse(PageConfig.getOption('litePluginSettings') || '{}');
    const url = settings?.[PYODIDE_PLUGIN]?.pyodideUrl;
    return url ? new URL(url, URLExt.join(window.location.origin, PageConfig.getBaseUrl())).href : null;
  } catch {
    return null;
  }
}

export class KernelFailures {
  /** kernel id -> why it could not load */
  readonly reasons = new Map<string, string>();
  private readonly started = new Map<string, number>();
  private readonly answered = new Set<string>();

  /** A kernel object of the in-browser client, seen for the first time. */
  watch(id: string, kernel: any): void {
    if (!kernel || kernel.__jrStartWatched) {
      return;
    }
    kernel.__jrStartWatched = true;
    this.started.set(id, performance.now());
    const url = pyodideUrl();
    if (url) {
      // Another origin (a CDN) answers opaquely: only a network error says something there.
      const sameOrigin = new URL(url).origin === window.location.origin;
      void fetch(url, { method: 'HEAD', cache: 'no-store', mode: sameOrigin ? 'same-origin' : 'no-cors' }).then(
        response => {
          if (sameOrigin && !response.ok) {
            this.fail(id, `Pyodide is missing from ${url} (HTTP ${response.status})`);
          }
        },
        err => this.fail(id, `Pyodide could not be fetched from ${url} (${err})`)
      );
    }
    kernel.ready?.catch?.((err: unknown) => {
      if (!kernel.isDisposed) {
        this.fail(id, String((err as Error)?.message ?? err).trim() || 'unknown error');
      }
    });
  }

  /** The kernel `id` reported idle: it loaded. */
  idle(id: string): void {
    this.answered.add(id);
  }

  /** Report kernels that are still not idle after START_LIMIT_S. */
  check(): void {
    const now = performance.now();
    for (const [id, t0] of this.started) {
      if (!this.answered.has(id) && !this.reasons.has(id) && now - t0 > START_LIMIT_S * 1000) {
        this.fail(id, `it has not answered for ${START_LIMIT_S} s after starting (the browser console of the page has its worker's errors)`);
      }
    }
  }

  forgetExcept(live: Set<string>): void {
    for (const map of [this.reasons, this.started]) {
      for (const id of Array.from(map.keys())) {
        if (!live.has(id)) {
          map.delete(id);
        }
      }
    }
  }

  private fail(id: string, reason: string): void {
    if (this.reasons.has(id) || this.answered.has(id)) {
      return;
    }
    this.reasons.set(id, reason);
    console.error(`jupyterlite-rayon: kernel ${id} could not load: ${reason}`);
    // Toasts cut long text: the reason here, what to do behind the action.
    Notification.error(`The Python kernel could not load: ${reason}.`, {
      autoClose: false,
      actions: [
        {
          label: 'What to do',
          callback: () => {
            void showDialog({
              title: 'The Python kernel could not load',
              body: failureText(reason),
              buttons: [Dialog.okButton()]
            });
          }
        }
      ]
    });
  }
}
