/**
 * A fix for pyodide-kernel 0.8.6 on cross-origin isolated pages.
 *
 * The kernel talks to its worker through coincident there, and coincident assumes
 * Atomics.waitAsync always answers asynchronously. When the worker replies before the page
 * waits, waitAsync answers synchronously ({async: false, value: 'not-equal'}), the call throws
 * "value.then is not a function" and the kernel hangs. This gives such answers a promise.
 */

/** Wrap Atomics.waitAsync once; must run before the kernel's chunk captures it. */
export function fixWaitAsync(): void {
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
