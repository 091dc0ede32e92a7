// The page side of the pool's interrupt handshake, for a JupyterLite page (0.8.x).
//
// JupyterLite's pyodide kernel 0.8.6 gives Pyodide no interrupt buffer, so a Jupyter interrupt
// cannot reach code that runs. When the page is cross-origin isolated, the jupyterlite-rayon
// backend installs one in the kernel worker and posts {type: 'jupyterlite-rayon:interrupt-buffer',
// buffer: Int32Array} to the page. This script keeps the buffer of each in-browser kernel and, when
// that kernel is interrupted, stores SIGINT (2) into it. The labextension should do the same; the
// browser tests install this copy only when the labextension has not.
// Evaluate as a function expression: (bridge)(window.jupyterapp) -> {installed, reason}.
(app) => {
  if (window.__jrInterruptBridge) return { installed: true, reason: 'already installed' };
  const registry = app.pluginRegistry || app;
  const plugins = registry._plugins || registry._pluginMap;
  const data = plugins && plugins.get('@jupyterlite/services-extension:kernel-client');
  const client = data && data.service;
  if (!client || !client._kernels || typeof client.interrupt !== 'function') {
    return { installed: false, reason: 'the in-browser kernel client was not found' };
  }
  const buffers = new Map();
  const watch = () => {
    // A Map or a lumino ObservableMap (keys() is an iterator or an array).
    for (const id of client._kernels.keys()) {
      const kernel = client._kernels.get(id);
      const worker = kernel && kernel._worker;
      if (!worker || worker.__jrWatched) continue;
      worker.__jrWatched = true;
      worker.addEventListener('message', (event) => {
        const d = event.data;
        if (d && d.type === 'jupyterlite-rayon:interrupt-buffer') buffers.set(id, d.buffer);
      });
    }
  };
  watch();
  const timer = setInterval(watch, 250);
  const interrupt = client.interrupt.bind(client);
  client.interrupt = async (id) => {
    const buffer = buffers.get(id);
    if (buffer) Atomics.store(buffer, 0, 2);
    return interrupt(id);
  };
  window.__jrInterruptBridge = { buffers, stop: () => clearInterval(timer) };
  return { installed: true, reason: 'installed by the test' };
}
