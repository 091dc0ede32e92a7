// A bare Pyodide kernel worker for fast iteration: like JupyterLite's pyodide-kernel 0.8.6 it
// runs Pyodide in a module Worker and sets NO interrupt buffer. The page sends Python code;
// the worker replies with the result or the error, plus what was printed.
let pyodide = null;

async function start({ pyodideUrl, files }) {
  const { loadPyodide } = await import(pyodideUrl);
  pyodide = await loadPyodide({ indexURL: new URL('./', pyodideUrl).href });
  // Copy the package from the repository into the Pyodide FS (what piplite does in the lite site).
  for (const [path, url] of files) {
    const data = new Uint8Array(await (await fetch(url)).arrayBuffer());
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf('/')));
    pyodide.FS.writeFile(path, data);
  }
  pyodide.runPython("import sys; sys.path.insert(0, '/home/pyodide/pkg')");
}

async function run(code) {
  const out = [];
  pyodide.setStdout({ batched: (s) => out.push(s + '\n') });
  pyodide.setStderr({ batched: (s) => out.push(s + '\n') });
  try {
    const value = await pyodide.runPythonAsync(code);
    const text = value === undefined ? null : String(value);
    if (value && value.destroy) value.destroy();
    return { status: 'ok', result: text, stdout: out.join('') };
  } catch (e) {
    return { status: 'error', error: String(e.message || e), stdout: out.join('') };
  }
}

onmessage = async ({ data }) => {
  try {
    if (data.type === 'start') { await start(data); postMessage({ id: data.id, status: 'ok' }); }
    else postMessage({ id: data.id, ...(await run(data.code)) });
  } catch (e) {
    postMessage({ id: data.id, status: 'error', error: String(e && e.stack || e) });
  }
};
