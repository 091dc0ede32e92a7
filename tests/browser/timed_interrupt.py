"""Timing an interrupt in a page kernel: the page's clock when the labextension's bridge stores
SIGINT, and the worker's clock when KeyboardInterrupt reaches the cell (test_interrupts.py and
test_foreign_page.py)."""

# The page's clock at the moment the bridge stores SIGINT, kept for the test to read.
JS_TIMED_INTERRUPT = """async () => {
  const bridge = window.__jrInterruptBridge;
  const k = window.__jrPanel.sessionContext.session.kernel;
  const buffers = Array.from(bridge.buffers.values());
  const sent = performance.timeOrigin + performance.now();
  await k.interrupt();
  // Not the buffer's value after: Pyodide may already have taken the signal out of it.
  return {sent, buffers: buffers.length};
}"""

JS_CELL_PRINTED = """(marker) => { const nb = window.__jrPanel.content;
  const cell = nb.widgets[nb.widgets.length - 1];
  return JSON.stringify(cell.model.outputs.toJSON()).includes(marker); }"""

# Runs `body` (indented by four spaces), prints "running" first and, on KeyboardInterrupt,
# the worker's clock as JSON.
TIMED_CELL = """
import js, json
print("running", flush=True)
try:
{body}
except KeyboardInterrupt as e:
    print(json.dumps({{"landed": js.performance.timeOrigin + js.performance.now(),
                      "message": str(e)}}), flush=True)
    raise
"""
