"""Fleet runs: a sweep of whole ``hwbench run``s executed on a Ray cluster, one run per node at
a time, their result directories brought back into one output root and one index.

``sweep``: the sweep file parsed into frozen runs · ``build``: the hwbench version and build a
node must share with the driver · ``cluster``: Ray, imported lazily, and the hwbench nodes ·
``task``: the Ray task that starts one run on its node and brings its run directory back ·
``process``: the run's own process (the same ``execute`` as ``hwbench run``) · ``manifest``: the sweep's state on disk, beside its runs ·
``driver``: places runs on nodes, follows them, records what happened. docs/fleet.md.

A fleet never reaches inside a run: it hands a RunConfig to the runner and gets a run
directory back.
"""
