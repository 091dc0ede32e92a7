"""The notebook front: the `%parallel` / `%%parallel` magics and the pool widget.

    magics.py   the Magics class (options declared with magic_arguments) and %load_ext
    sweep.py    running a cell at thread counts and timing it (RunStats, SweepRow)
    report.py   what a timed cell shows: a line, or a text/HTML table with SVG charts
    status.py   the pool's state in words (%parallel, %parallel info, the widget's panel)
    live.py     widget(): the one snapshot every widget shows, and its live updates
    widget.py   PoolWidget, the ipywidgets view (the only module that imports ipywidgets)
    startup.py  the pool start %load_ext schedules in JupyterLite, which both sides watch

Imports go one way (magics -> sweep/report/status/live -> startup); nothing here imports
IPython or ipywidgets when `jupyterlite_rayon` is imported.
"""
