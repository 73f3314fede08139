"""Fleet runs: a sweep of whole ``hwbench run``s executed on a Ray cluster, one run per node at
a time, their result directories brought back into one output root and one index.

``sweep``: the sweep file parsed into frozen runs · ``build``: the hwbench version and build a
node must share with the driver · ``cluster``: Ray, imported lazily, and the hwbench nodes ·
``task``: what a node does with one run (the same ``execute`` as ``hwbench run``) and how its
run directory travels back · ``manifest``: the sweep's state on disk, beside its runs ·
``driver``: places runs on nodes, follows them, records what happened. docs/fleet.md.

A fleet never reaches inside a run: it hands a RunConfig to the runner and gets a run
directory back.
"""
