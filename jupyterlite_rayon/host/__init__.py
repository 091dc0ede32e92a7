"""The JS host of the pool (ES modules, entry index.mjs) and its browser loader (loader.py)."""
