/**
 * Cross-origin isolation: whether the page has it, the fix for the host serving it (the texts of
 * jupyterlite_rayon/isolation.py, through the generated abi.ts), and the one reload a site
 * built with RayonAddon.service_worker needs before its service worker's headers apply.
 */
import { IHostFix, ISOLATION_HOSTS } from './abi.js';

const RELOAD_KEY = 'jupyterlite-rayon:isolation-reload';

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

/**
 * The row of ISOLATION_HOSTS for a hostname, by isolation.py's host_kind rule: a suffix
 * matches the host itself or any `*.suffix` (case-insensitively), "" matches any host, and
 * the last row is the fallback.
 */
export function hostFix(hostname: string): IHostFix {
  const host = hostname.toLowerCase();
  for (const row of ISOLATION_HOSTS) {
    for (const suffix of row.suffixes) {
      if (suffix === '' || host === suffix || host.endsWith('.' + suffix)) {
        return row;
      }
    }
  }
  return ISOLATION_HOSTS[ISOLATION_HOSTS.length - 1];
}

/** The fix for the host serving the page, in one sentence. */
export function fixForHost(hostname: string): string {
  return hostFix(hostname).fix;
}

/** How a row names its hosts, for a list of the fixes elsewhere. */
export function hostLabel(row: IHostFix): string {
  const named = row.suffixes.filter(s => s !== '');
  return named.length ? named.join(', ') : 'any other host';
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
