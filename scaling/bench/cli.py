"""`scaling bench`: how fast the train step runs, against the hardware's limit and against PyTorch.

  scaling bench --config FILE [--config.KEY=VALUE ...] [--steps N] [--warmup N] [--json]
      [--torch | --no-torch] [--depths 2 32 [--compile-repeats 3]]
      [--matmul-sizes 256 512 1024 2048]

The step is the trainer's own (`state.build` on the configured mesh, state donated), fed one batch of
synthetic random tokens that stays on the device, so no data loading is timed. Reported:
- compile: tracing, lowering and XLA compilation of the train step (JAX's own timings of its first
  call), and the first call as a whole;
- step time: the median of --steps steps, each waited for (block_until_ready), after --warmup steps;
  and how long the call took to return (dispatch), which the training loop overlaps with compute;
- tokens/s = batch × seq_len / step time; model FLOP/s = tokens/s × flops_per_token["chinchilla"];
- MFU = model FLOP/s / peak: the vendors' dense peak per device × devices on accelerators
  (`scaling.bench.peaks`), and on CPU the best float32 matmul throughput this process reaches
  (jitted [n, n] @ [n, n] at each of --matmul-sizes, the best size re-timed in every round; the
  fastest timing of all, since other processes only slow a timing down);
- with --torch (the default on CPU when PyTorch is installed and compute is float32): the same model
  in eager PyTorch (`torch_twin`), starting from our initial weights, on as many threads as XLA uses,
  and the ratio of tokens/s: of the medians, and of the fastest steps (less sensitive to other
  processes on the machine). Our steps, the twin's and the matmul probe alternate in 5 rounds, so
  drifting machine load hits them alike;
- with --depths: the compile time of the same step at each depth, blocks looped and scanned, the
  median of --compile-repeats compilations from cleared caches.

--json prints one JSON object instead of the table; its keys are listed in docs/benchmarks.md.
"""

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np

from scaling.errors import ArgumentParser, InputError

ROUNDS = 5


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling bench", description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="ml_collections config file (as scaling train)")
  parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
  parser.add_argument("--json", action="store_true", help="print one JSON object")
  parser.add_argument("--torch", action=argparse.BooleanOptionalAction, default=None,
                      help="time the PyTorch twin too (default: on CPU, if torch is installed)")
  parser.add_argument("--depths", type=int, nargs="+", default=[], metavar="N",
                      help="also compile the step at these n_layers, looped and scanned")
  parser.add_argument("--compile-repeats", type=int, default=3, metavar="N",
                      help="compilations per depth and variant (median reported)")
  parser.add_argument("--matmul-sizes", type=int, nargs="+", default=[256, 512, 1024, 2048],
                      metavar="N", help="CPU peak probe: square float32 matmul sizes")
  return parser


def load_config(path: str, overrides: list[str]):
  """The config file with its `--config.KEY=VALUE` overrides, read as `scaling train` reads them.

  `config_file.load` insists on a --workdir, which the bench never writes to: it gets a stand-in.
  """
  from scaling import config_file

  config, _ = config_file.load(["--config", path, *overrides, "--workdir", os.devnull],
                               prog="scaling bench", reference="configs/base.py")
  return config


def _check_args(args, overrides):
  unknown = [a for a in overrides if not a.startswith("--config.")]
  if unknown:
    raise InputError(f"scaling bench: unrecognized arguments: {' '.join(unknown)}")
  for name, minimum in (("steps", 1), ("warmup", 0), ("compile_repeats", 1)):
    if getattr(args, name) < minimum:
      flag = "--" + name.replace("_", "-")
      raise InputError(f"scaling bench: {flag} must be ≥ {minimum}, got {getattr(args, name)}")
  for name in ("depths", "matmul_sizes"):
    if any(n < 1 for n in getattr(args, name)):
      raise InputError(f"scaling bench: --{name.replace('_', '-')} must be positive integers")


def interleave(runs: dict, counts: dict, rounds: int) -> dict[str, list[float]]:
  """Seconds of each call: `counts[name]` calls of `runs[name]`, split into `rounds` blocks that
  alternate between the runs, so that load drifting over minutes hits every run alike."""
  seconds = {name: [] for name in runs}
  for r in range(rounds):
    for name, run in runs.items():
      for _ in range(counts[name] * (r + 1) // rounds - counts[name] * r // rounds):
        start = time.perf_counter()
        run()
        seconds[name].append(time.perf_counter() - start)
  return seconds


def _use_torch(requested, platform: str, dtype: str, arch: str) -> bool:
  """On unless asked otherwise, where it is a fair comparison: a Transformer on CPU in float32,
  torch installed."""
  reasons = [reason for reason, bad in (
      (f"the twin is a Transformer, not model.arch={arch}", arch != "transformer"),
      ("the twin runs on CPU only", platform != "cpu"),
      ("the twin computes in float32 only", dtype != "float32"),
      ("PyTorch is not installed (pip install 'scaling[bench]')",
       importlib.util.find_spec("torch") is None)) if bad]
  if requested and reasons:
    raise InputError(f"scaling bench: --torch: {reasons[0]}")
  return not reasons if requested is None else requested


def _versions(with_torch: bool) -> dict:
  import flax
  import jax
  import jaxlib

  versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__}
  if with_torch:
    import torch

    versions["torch"] = torch.__version__
  return versions


def _compile_vs_depth(cfg, mesh, batch_BxL1, depths, repeats) -> list[dict]:
  """Median compile seconds of the train step at each depth, blocks looped and scanned; the repeats
  alternate between the variants, so that load drift hits them alike."""
  from scaling.bench.train_step import TrainStep

  variants = {}
  for n_layers in depths:
    for scan in (False, True):
      model = dataclasses.replace(cfg.model, n_layers=n_layers, scan_layers=scan)
      variants[n_layers, scan] = TrainStep(dataclasses.replace(cfg, model=model), mesh, batch_BxL1)
  seconds = {key: [] for key in variants}
  for _ in range(repeats):
    for key, step in variants.items():
      seconds[key].append(step.compile()["compile_s"]["total"])
  return [{"n_layers": n_layers, "scan_layers": scan, "compile_s": statistics.median(s),
           "compile_s_all": s} for (n_layers, scan), s in seconds.items()]


def _torch_twin(cfg, args, batch_BxL1, params, threads: int):
  """The step in eager PyTorch, from our initial weights and learning-rate schedule, on as many
  threads as XLA uses."""
  import torch

  from scaling.bench import torch_twin
  from scaling.train import state as state_lib

  torch.set_num_threads(threads)
  rates = np.asarray(state_lib.learning_rate_schedule(cfg)(np.arange(1 + args.warmup + args.steps)))
  return torch_twin.TwinStep(cfg, batch_BxL1, rates, params=params)


def _measured_peak(sizes, size: int, by_size: dict, matmul_flops: float,
                   round_seconds: list[float]) -> tuple[float, str, dict]:
  """On CPU: (peak, where it comes from, the `matmul` report) from the size probe and the best
  size's re-timings in the rounds."""
  from scaling.bench import peaks

  round_flops = [matmul_flops / s for s in round_seconds]
  peak = peaks.cpu_peak(by_size, round_flops)
  source = (f"measured: jitted float32 [n,n]@[n,n], fastest of sizes {sizes} "
            f"and of {len(round_flops)} in-round re-timings of n={size}")
  return peak, source, {"size": size, "flops_per_sec": peak, "rounds": round_flops,
                        "by_size": {str(n): f for n, f in by_size.items()}}


def _table_peak(device, count, dtype: str) -> tuple[float | None, str]:
  """On an accelerator: (the published peak of `count` devices, where it comes from)."""
  from scaling.bench import peaks

  per_device = peaks.table_peak(device.device_kind, dtype)
  if not per_device:
    return None, f"no published {dtype} peak for {device.device_kind}"
  return per_device * count, f"table: {device.device_kind} {dtype} × {count}"


def _throughput(step_seconds: list[float], setting: dict, peak: float | None) -> dict:
  """Median step, tokens/s, model FLOP/s and MFU of one implementation's timed steps."""
  from scaling.bench import peaks

  step_s = statistics.median(step_seconds)
  tokens_per_sec = setting["tokens_per_step"] / step_s
  model_flops = tokens_per_sec * setting["flops_per_token"]
  return {"step_s": step_s, "step_s_min": min(step_seconds), "tokens_per_sec": tokens_per_sec,
          "model_flops_per_sec": model_flops, "mfu": peaks.mfu(model_flops, peak)}


def _depth_comparison(cfg, mesh, batch_BxL1, depths, repeats) -> dict:
  """`depths` (compile seconds per depth and variant) and `compile_ratio` (deepest / shallowest)."""
  rows = _compile_vs_depth(cfg, mesh, batch_BxL1, depths, repeats)
  shallow, deep = min(depths), max(depths)
  by = {(r["n_layers"], r["scan_layers"]): r["compile_s"] for r in rows}
  return {"depths": rows, "compile_ratio": {"loop": by[deep, False] / by[shallow, False],
                                            "scan": by[deep, True] / by[shallow, True]}}


def _setting(cfg, mesh, path: str, with_torch: bool, threads: int) -> dict:
  """What is measured, where and with what: the report's first keys."""
  from scaling import models

  device = mesh.devices.flat[0]
  architecture = models.get(cfg.model.arch)
  return {
      "config": {"path": path, **cfg.model.resolved(), "batch_size": cfg.batch_size},
      "device": {"platform": device.platform, "kind": device.device_kind,
                 "count": int(mesh.devices.size)},
      "versions": _versions(with_torch),
      "threads": {"xla": threads, "torch": threads if with_torch else None},
      "batch": "synthetic random tokens, one batch kept on the device",
      "params": architecture.param_counts(cfg.model)["total"],
      "flops_per_token": architecture.flops_per_token(cfg.model)["chinchilla"],
      "tokens_per_step": cfg.batch_size * cfg.model.seq_len,
  }


def measure(cfg, mesh, args) -> dict:
  """Runs everything and returns the report (see the module docstring)."""
  from scaling.bench import peaks
  from scaling.bench.train_step import TrainStep

  device = mesh.devices.flat[0]
  with_torch = _use_torch(args.torch, device.platform, cfg.model.dtype, cfg.model.arch)
  threads = len(os.sched_getaffinity(0))  # XLA:CPU sizes its Eigen pool to the usable cores
  load_before = os.getloadavg()[0]
  rng = np.random.default_rng(cfg.seed)
  batch_BxL1 = rng.integers(0, cfg.model.vocab_size, (cfg.batch_size, cfg.model.seq_len + 1),
                            dtype=np.int32)

  ours = TrainStep(cfg, mesh, batch_BxL1)
  runs, counts = {"ours": ours.step}, {"ours": args.steps}
  twin = _torch_twin(cfg, args, batch_BxL1, ours.params(), threads) if with_torch else None
  if twin:
    torch_first_loss = twin.step()
    runs["torch"], counts["torch"] = twin.step, args.steps
  first = ours.compile()
  for _ in range(args.warmup):
    ours.step()
    if twin:
      twin.step()
  if device.platform == "cpu":
    size, by_size = peaks.best_matmul_size(args.matmul_sizes)
    runs["matmul"], matmul_flops = peaks.matmul_probe(size)
    counts["matmul"] = ROUNDS
  seconds = interleave(runs, counts, min(ROUNDS, args.steps))
  if device.platform == "cpu":
    peak, peak_source, matmul = _measured_peak(args.matmul_sizes, size, by_size, matmul_flops,
                                               seconds["matmul"])
  else:
    peak, peak_source = _table_peak(device, mesh.devices.size, cfg.model.dtype)

  setting = _setting(cfg, mesh, args.config, with_torch, threads)
  report = {
      **setting,
      "steps": args.steps,
      "compile_s": first["compile_s"],
      "first_step_s": first["first_step_s"],
      "first_loss": first["loss"],
      **_throughput(seconds["ours"], setting, peak),
      "dispatch_s": statistics.median(ours.dispatch_s[-args.steps:]),
      "peak_flops_per_sec": peak,
      "peak_source": peak_source,
  }
  if device.platform == "cpu":
    report["matmul"] = matmul
  if twin:
    report["torch"] = {**_throughput(seconds["torch"], setting, peak),
                       "first_loss": torch_first_loss}
    report["ratio"] = report["tokens_per_sec"] / report["torch"]["tokens_per_sec"]
    report["ratio_best"] = report["torch"]["step_s_min"] / report["step_s_min"]
  if args.depths:
    del ours, twin  # free their state before compiling other depths
    report.update(_depth_comparison(cfg, mesh, batch_BxL1, args.depths, args.compile_repeats))
  report["load_avg"] = [load_before, os.getloadavg()[0]]
  return report


def _percent(fraction):
  return "n/a" if fraction is None else f"{100 * fraction:.1f} %"


def format_report(r: dict) -> str:
  """The report as a short human-readable table."""
  c = r["config"]
  v = r["versions"]
  lines = [
      f"scaling bench {c['path']}: " + ", ".join(f"{k} {c[k]}" for k in c if k != "path"),
      f"device {r['device']['kind']} × {r['device']['count']} ({r['device']['platform']}); threads "
      f"XLA {r['threads']['xla']}" + (f", torch {r['threads']['torch']}" if r["threads"]["torch"] else "")
      + "; " + ", ".join(f"{k} {v[k]}" for k in v)
      + f"; load {r['load_avg'][0]:.2f} → {r['load_avg'][1]:.2f}",
      f"params {r['params']:,}; {r['flops_per_token']:.4g} model FLOPs/token (chinchilla); "
      f"{r['tokens_per_step']:,} tokens/step; {r['batch']}",
      f"compile: trace {r['compile_s']['trace']:.2f} s + lower {r['compile_s']['lower']:.2f} s + "
      f"XLA {r['compile_s']['xla']:.2f} s = {r['compile_s']['total']:.2f} s; first step "
      f"{r['first_step_s']:.2f} s; a step's call returns after {1e3 * r['dispatch_s']:.1f} ms "
      "(asynchronous dispatch)",
      f"peak {r['peak_flops_per_sec'] or 0:.4g} FLOP/s ({r['peak_source']})",
      "",
      f"{'':16}{'step (median)':>15}{'tokens/s':>12}{'model FLOP/s':>14}{'MFU':>9}{'loss 1':>9}",
  ]
  rows = [("scaling (JAX)", r, r["first_loss"])]
  if "torch" in r:
    rows.append(("torch (eager)", r["torch"], r["torch"]["first_loss"]))
  for name, t, loss in rows:
    lines.append(f"{name:16}{1e3 * t['step_s']:>12.1f} ms{t['tokens_per_sec']:>12,.0f}"
                 f"{t['model_flops_per_sec']:>14.4g}{_percent(t['mfu']):>9}{loss:>9.4f}")
  if "ratio" in r:
    lines.append(f"ours / torch tokens/s: {r['ratio']:.2f}× (medians), {r['ratio_best']:.2f}× (fastest "
                 "steps, less sensitive to other processes on the machine)")
  if "depths" in r:
    lines.append("")
    lines.append("compile time of the train step by depth: " + ", ".join(
        f"n_layers {d['n_layers']} {'scan' if d['scan_layers'] else 'loop'} {d['compile_s']:.2f} s"
        for d in r["depths"]))
    lines.append(f"deepest / shallowest: loop {r['compile_ratio']['loop']:.2f}×, "
                 f"scan {r['compile_ratio']['scan']:.2f}×")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  args, overrides = _parser().parse_known_args(argv)
  _check_args(args, overrides)
  config = load_config(args.config, overrides)
  from scaling.data import tokenizer
  from scaling.parallel import mesh as mesh_lib
  from scaling.train import config as config_lib

  vocab_size = tokenizer.load_tokenizer(config.data.tokenizer).vocab_size
  cfg = config_lib.validate(config, vocab_size=vocab_size)
  mesh = mesh_lib.make_mesh(cfg.mesh)
  import jax

  config_lib.check_fits_mesh(cfg, mesh.devices.shape, jax.process_count())
  report = measure(cfg, mesh, args)
  print(json.dumps(report, indent=2) if args.json else format_report(report))
  return 0
