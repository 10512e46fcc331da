"""Sweeps: a sweep config -> a plan of named runs -> trained one by one -> results.csv.

`config.defaults()` (every key), `plan.build(config, workdir)` (validate and plan, run nothing),
`runner.run(plan)` (train, skip finished runs, survive failures), `results.read(path)`;
`core` is what the local and Ray executors share (what is done, what may start, re-runs).
"""
