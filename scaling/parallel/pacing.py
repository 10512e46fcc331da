"""Keeps the host at most a few programs ahead of the devices.

JAX dispatches asynchronously: a loop of jitted calls with no host read in between queues every
call at once. XLA's CPU client lets 32 programs per device be in flight and launches the programs
of a multi-device computation on a thread pool only as large as the device count (on a machine
with fewer cores than devices). Once a device's queue is full, a launch blocks one of those threads
while the other holds a collective (an FSDP all-gather) waiting for its partner, which cannot start:
the rendezvous deadlocks and XLA aborts the process after 40 s (SIGABRT, exit 134). A sweep's
64 evaluation batches queued at once did this to `scaling sweep` in 2 of ~25 runs with 2 devices.

Waiting for the result of the call `lag` calls back costs nothing while the devices keep up (that
result is ready) and keeps them `lag` programs busy while the host is ahead.
"""

import collections

import jax

LAG = 8  # calls; each may be two programs (a step and an accumulation): well under 32


class Pacer:
  """`pace(x)` after each call of a dispatch loop: blocks until the output `LAG` calls back is
  ready."""

  def __init__(self, lag: int = LAG):
    self._outputs = collections.deque()
    self._lag = lag

  def pace(self, output) -> None:
    self._outputs.append(output)
    if len(self._outputs) > self._lag:
      jax.block_until_ready(self._outputs.popleft())
