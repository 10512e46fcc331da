"""P processes on this machine joined by `jax.distributed`, each with its own simulated CPU devices.

The multi-host code path (process-local batches, collectives across processes, one metrics writer)
runs here exactly as on a pod slice, with CPU collectives (gloo, jax's default on CPU) in place of
the interconnect.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from scaling.launch import command as command_lib

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
STOP_TIMEOUT_S = 10
# Gloo (the CPU collectives) prints its connection report on stdout, from C++: not the command's.
GLOO_LINE = re.compile(rb"^\[Gloo\] ")


def copy_output(stream, out) -> threading.Thread:
  """Copies a child's stdout (bytes) to `out` (text) line by line, without Gloo's lines."""
  def copy():
    for line in iter(stream.readline, b""):
      if not GLOO_LINE.match(line):
        out.write(line.decode(errors="replace"))
        out.flush()
    stream.close()
  thread = threading.Thread(target=copy, daemon=True)
  thread.start()
  return thread


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def child_env(environ: dict, devices_per_process: int) -> dict:
  """The parent's environment with CPU-only JAX and this many simulated devices, no other count."""
  flags = re.sub(rf"{DEVICE_COUNT_FLAG}=\S*", "", environ.get("XLA_FLAGS", "")).split()
  return {**environ, "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": " ".join([*flags, f"{DEVICE_COUNT_FLAG}={devices_per_process}"])}


def child_commands(command: list[str], processes: int, port: int) -> list[list[str]]:
  """`scaling ...` for each process id, run by this interpreter (so the same environment)."""
  return [
      [sys.executable, "-m", "scaling.cli", *command_lib.with_distributed(
          command, coordinator_address=f"localhost:{port}", num_processes=processes,
          process_id=i)[1:]]
      for i in range(processes)
  ]


def stop(processes: list[subprocess.Popen]) -> None:
  """Terminates the ones still running, then kills what has not exited after STOP_TIMEOUT_S."""
  for process in processes:
    if process.poll() is None:
      process.terminate()
  deadline = time.monotonic() + STOP_TIMEOUT_S
  for process in processes:
    try:
      process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def wait_all(processes: list[subprocess.Popen]) -> tuple[int, int | None]:
  """Waits for every process; at the first failure stops the others (they would block in a
  collective). Returns (exit code, index of the process that failed or None)."""
  try:
    while True:
      codes = [process.poll() for process in processes]
      failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
      if failed is not None:
        stop(processes)
        return (codes[failed] if codes[failed] > 0 else 1), failed
      if all(code == 0 for code in codes):
        return 0, None
      time.sleep(0.1)
  except KeyboardInterrupt:
    stop(processes)
    raise


def launch(command: list[str], processes: int, devices_per_process: int) -> int:
  """Runs the command as `processes` processes; streams process 0's output, keeps the others' in
  temporary files and prints the tail of a failed one. Returns the first non-zero exit code."""
  env = child_env(dict(os.environ), devices_per_process)
  logs = [tempfile.TemporaryFile() for _ in range(processes - 1)]
  children, copier = [], None
  try:
    for i, argv in enumerate(child_commands(command, processes, free_port())):
      if i == 0:  # its stderr (progress bars, errors) as it is; its stdout without Gloo's lines
        children.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE))
        copier = copy_output(children[0].stdout, sys.stdout)
      else:
        children.append(subprocess.Popen(argv, env=env, stdout=logs[i - 1], stderr=logs[i - 1]))
    code, failed = wait_all(children)
  finally:
    stop(children)
    if copier is not None:
      copier.join()
  if failed:
    logs[failed - 1].seek(0)
    tail = [line for line in logs[failed - 1].read().decode(errors="replace").splitlines()
            if not GLOO_LINE.match(line.encode())][-20:]
    print("\n".join(f"[process {failed}] {line}" for line in tail), file=sys.stderr)
  if failed is not None:
    print(f"scaling launch local: process {failed} exited with code {code}; stopped the others",
          file=sys.stderr)
  for log in logs:
    log.close()
  return code
