"""`scaling generate --workdir DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K]
[--seed S]`: prints the prompt and a sampled continuation from the workdir's latest checkpoint."""

from scaling.errors import ArgumentParser, InputError


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling generate", description=__doc__.split(":", 1)[1].strip())
  parser.add_argument("--workdir", required=True, help="a `scaling train` workdir with a checkpoint")
  parser.add_argument("--prompt", required=True, help="text to continue ('' = a document start)")
  parser.add_argument("--max-tokens", type=int, default=64, help="tokens to sample (default 64)")
  parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
  parser.add_argument("--top-k", type=int, default=0, help="sample from the k likeliest (0 = all)")
  parser.add_argument("--seed", type=int, default=0, help="sampling seed: same seed, same text")
  return parser


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  if args.max_tokens <= 0:
    raise InputError(f"--max-tokens must be positive, got {args.max_tokens}")
  if not args.temperature >= 0:
    raise InputError(f"--temperature must be ≥ 0, got {args.temperature}")
  if args.top_k < 0:
    raise InputError(f"--top-k must be ≥ 0, got {args.top_k}")
  from scaling.sample import sampler  # deferred: jax loads only once the arguments are good

  trained = sampler.load(args.workdir)
  text = sampler.generate(trained, args.prompt, max_tokens=args.max_tokens,
                          temperature=args.temperature, top_k=args.top_k, seed=args.seed)
  print(args.prompt + text, flush=True)
  return 0
