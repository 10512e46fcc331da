"""`scaling compile --config FILE --topology TYPE [--num-slices K] [--config.KEY=VALUE ...] [--json] [--hlo FILE] [--search]`.

Compiles `scaling train`'s step for a TPU slice (`v4-32`, `v5p-128`, `v5litepod-16`, `v6e-256`, ...)
on this machine, CPU included (K such slices joined by the data-center network with --num-slices),
and reports its memory per device against the chip's HBM, its FLOPs
against the model's, its collectives and a roofline bound on the step time (docs/scale.md). Exit 0
when it fits, 1 when it does not (the figures, and one line on stderr: by how much, what would help),
2 for bad input or without libtpu. --json prints one JSON object instead of the summary.
--search tries microbatches × remat policies instead and ranks those that fit (exit 1 if none).
"""

import json
import os
import sys

from scaling import storage
from scaling.errors import ArgumentParser, InputError

PROG = "scaling compile"


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="ml_collections config file (as scaling train)")
  parser.add_argument("--topology", required=True, metavar="TYPE",
                      help="a TPU accelerator type, as `scaling launch tpu --accelerator-type` takes")
  parser.add_argument("--num-slices", type=int, default=1, metavar="K",
                      help="K slices of TYPE joined by the data-center network (multi-slice); the "
                           "mesh's data axis (else fsdp) spans them")
  parser.add_argument("--json", action="store_true", help="print one JSON object")
  parser.add_argument("--hlo", metavar="FILE", help="also write the optimized HLO to FILE")
  parser.add_argument("--search", action="store_true",
                      help="try microbatches × remat policies; print those that fit, ranked "
                      "(scaling/compile/search.py)")
  return parser


def load_train_config(path: str, overrides: list[str], prog: str = PROG):
  """(validated TrainConfig, the config as a dict with the resolved vocabulary), as `scaling train`
  reads them; the vocabulary comes from the tokenizer alone, no corpus is read."""
  from scaling import config_file
  from scaling.data.corpus import DataConfig
  from scaling.data.tokenizer import load_tokenizer
  from scaling.train import config as config_lib

  unknown = [a for a in overrides if not a.startswith("--config.")]
  if unknown:
    raise InputError(f"{prog}: unrecognized arguments: {' '.join(unknown)}")
  config, _ = config_file.load(["--config", path, *overrides, "--workdir", os.devnull], prog=prog,
                               reference="configs/base.py")
  config_file.require(config, ("data",), prog=prog, reference="scaling.train.config.defaults()")
  tokenizer = load_tokenizer(DataConfig.from_dict(config.data).tokenizer)
  cfg = config_lib.validate(config, vocab_size=tokenizer.vocab_size)
  resolved = config.to_dict()
  resolved["model"] = {**resolved["model"], "vocab_size": cfg.model.vocab_size}
  return cfg, resolved


def _gib(n) -> str:
  return "n/a" if n is None else f"{n / 2**30:.3f} GiB"


def summary(report: dict) -> str:
  """The report as a few lines of text."""
  memory, state = report["memory_per_device"], report["state_bytes"]
  mesh = " ".join(f"{axis}={size}" for axis, size in report["mesh"].items())
  slices = f" × {report['slices']} slices" if report.get("slices", 1) > 1 else ""
  lines = [
      f"{report['topology']}{slices} ({report['topology_name']}): {report['devices']} × {report['device_kind']} "
      f"in {report['processes']} processes; mesh {mesh}; compiled in {report['compile_seconds']:.1f} s",
      f"memory per device: arguments {_gib(memory['arguments'])}, outputs {_gib(memory['outputs'])} "
      f"(aliased {_gib(memory['aliased'])}), temp {_gib(memory['temp'])}, total "
      f"{_gib(memory['total'])} of {_gib(memory['hbm'])} HBM: "
      + ("fits" if memory["fits"] else "DOES NOT FIT"),
      f"state per device (our sharding): params {_gib(state['params'])}, optimizer "
      f"{_gib(state['optimizer'])}",
  ]
  if "flops" in report:
    flops, estimate = report["flops"], report["estimate"]
    loops = ", ".join(f"{count}×{trips} trips" for trips, count in flops["loops"].items()) or "none"
    lines.append(f"FLOPs per step: XLA {flops['xla_per_step']:.4g} (its cost analysis: "
                 f"{flops['xla_reported_per_step']:.4g}, loop bodies once; loops: {loops}), model "
                 f"{flops['model_per_step']:.4g} (chinchilla); ratio {flops['ratio']:.3f}")
    used = [f"{kind} {c['count']}× {_gib(c['bytes'])}" for kind, c in report["collectives"].items()
            if c["count"]]
    lines.append("collectives per device and step: " + (", ".join(used) or "none"))
    if report["cross_slice"]["count"]:
      lines.append(f"across slices (DCN) per device and step: {report['cross_slice']['count']} "
                   f"transfers of {_gib(report['cross_slice']['bytes'])}")
    seconds = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in estimate["seconds"].items())
    lines.append(f"HBM bytes per device and step: {_gib(estimate['bytes_accessed_per_step'])} with "
                 f"every loop trip (XLA's cost analysis: {_gib(estimate['bytes_accessed_xla_reported'])})")
    lines.append(f"roofline lower bound on the step: {estimate['step_seconds_lower_bound'] * 1e3:.2f} ms "
                 f"({estimate['bound_by']}-bound; {seconds}; "
                 f"{estimate['step_seconds_serial'] * 1e3:.2f} ms without overlap); "
                 f"MFU ≤ {estimate['mfu_upper_bound']:.1%}, "
                 f"≤ {estimate['tokens_per_sec_upper_bound']:,.0f} tokens/s")
  return "\n".join(lines)


def _check_hlo(path: str | None) -> None:
  """--hlo FILE can be written, checked before the compile (which takes seconds to minutes): a
  local file, not a directory, in a directory that exists. Nothing is written here."""
  if path is None:
    return
  if storage.is_remote(path):
    raise InputError(f"--hlo {path}: a local file is needed (the HLO is written with open())")
  if not path.strip():
    raise InputError("--hlo is empty; name a file for the optimized HLO")
  if os.path.isdir(path):
    raise InputError(f"--hlo {path} is a directory; name a file, such as "
                     f"{os.path.join(path, 'step.hlo')}")
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise InputError(f"--hlo {path}: directory {directory} does not exist")


def main(argv: list[str]) -> int:
  args, overrides = _parser().parse_known_args(argv)
  _check_hlo(args.hlo)
  from scaling.compile import aot, topology

  topo = topology.parse(args.topology, args.num_slices)
  cfg, resolved = load_train_config(args.config, overrides)
  if args.search:
    from scaling.compile import search

    result = search.search(cfg, resolved, topo)
    print(json.dumps(result, indent=2) if args.json else search.table(result, topo.accelerator_type))
    return 0 if result["fits"] else 1
  report = aot.compile_step(cfg, resolved, topo, hlo_path=args.hlo)
  print(json.dumps(report, indent=2) if args.json else summary(report))
  if not report["memory_per_device"]["fits"]:
    print(f"error: {aot.advice(report)}", file=sys.stderr)
    return 1
  return 0
