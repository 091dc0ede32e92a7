"""Names the jupyterlite-rayon labextension publishes on the page (labextension/src), which the
browser fixtures and tests look for."""

#: the plugin's id; also `window.__jrInterruptBridge.source` when its bridge is the active one
PLUGIN_ID = "jupyterlite-rayon:plugin"
#: the status bar item
STATUS = "#jupyterlite-rayon-status"
#: the sessionStorage key that guards the one service-worker reload
RELOAD_KEY = "jupyterlite-rayon:isolation-reload"
#: JS: the active interrupt bridge's source, or null
BRIDGE_SOURCE = "window.__jrInterruptBridge ? window.__jrInterruptBridge.source : null"
