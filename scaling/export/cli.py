"""`scaling export --workdir DIR --out HF_DIR [--step N]`: a trained run as a Hugging Face model
directory (config.json, generation_config.json, model.safetensors, tokenizer files) that
`transformers` loads: GPT-2 style runs as `GPT2LMHeadModel`, Llama style as `LlamaForCausalLM`.

Everything is built in memory first: a run with no faithful Hugging Face counterpart (another
family, or a mix of options such as rotary positions with LayerNorm) is one line naming the option,
exit 2, and nothing is written. HF_DIR (local or gs://) must not already hold files.
"""

import json

from scaling import rundir, storage
from scaling.errors import ArgumentParser, InputError


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling export", description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a `scaling train` workdir with a checkpoint")
  parser.add_argument("--out", required=True, help="the Hugging Face directory to write")
  parser.add_argument("--step", type=int, help="the checkpoint to export (default the latest)")
  return parser


def build(workdir: str, step: int | None = None) -> dict[str, bytes]:
  """{file name: content} of the Hugging Face directory for `workdir`'s checkpoint `step`."""
  try:
    from safetensors.numpy import save
  except ImportError:
    raise InputError("scaling export needs the hf extra: pip install 'scaling[hf]'") from None
  from scaling.export import tokenizer_files, weights
  from scaling.models.config import ModelConfig

  if storage.is_remote(workdir):
    storage.check_readable(workdir, "--workdir")
  run = rundir.RunDir(storage.absolute(workdir))
  try:  # refuse an unexportable model before restoring its checkpoint
    model_keys = (run.record().config or {}).get("model")
  except InputError:
    model_keys = None  # no or a broken run.json: sampler.load says which
  if isinstance(model_keys, dict):
    weights.family(ModelConfig.from_dict(model_keys))
  from scaling.sample import sampler  # deferred: JAX loads only for a run worth restoring

  trained = sampler.load(workdir, step)
  cfg, tokenizer = trained.cfg.model, trained.tokenizer
  config, tensors = weights.convert(trained.model, cfg, tokenizer.eos_id)
  model_proto = None
  if tokenizer.identity["kind"] == "spm":
    from etils import epath
    model_proto = epath.Path(tokenizer.path).read_bytes()
  eos = tokenizer.eos_id
  generation = {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos}
  metadata = {"format": "pt", "scaling_workdir": str(workdir), "scaling_step": str(trained.step)}
  return {"config.json": _json(config), "generation_config.json": _json(generation),
          "model.safetensors": save(tensors, metadata=metadata),
          **tokenizer_files.files(tokenizer, model_proto)}


def _json(value: dict) -> bytes:
  return (json.dumps(value, indent=2) + "\n").encode()


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  if args.step is not None and args.step <= 0:
    raise InputError(f"--step must be positive, got {args.step}")
  if storage.is_dir(args.out) and any(True for _ in _listing(args.out)):
    raise InputError(f"--out {args.out} already holds files; export to a new directory")
  files = build(args.workdir, args.step)
  for name, content in files.items():
    storage.write_bytes(storage.join(args.out, name), content)
  print(f"exported {args.workdir} to {args.out}: {', '.join(files)}", flush=True)
  return 0


def _listing(path: str):
  from etils import epath
  return epath.Path(path).iterdir()
