"""Our tokenizers as files `transformers.AutoTokenizer` loads: tokenizer.json (the `tokenizers`
library's format) and tokenizer_config.json.

- bytes: a BPE model with no merges whose vocabulary is the 256 byte-fallback pieces <0xNN>, so
  every UTF-8 byte is its own id, as ours; id 0 is the piece "\\x00", the special eos token, so a
  NUL in the text reads as the document separator here too (as ours does).
- SentencePiece: transformers' own SentencePiece converter (`SpmConverter`, which follows the
  model's normalizer spec, BPE merges by score or unigram scores, and byte fallback), with the
  model file beside it.
Both put eos before the text, as `scaling generate` does (training windows see a document start so),
and the generation config stops at eos.
"""

import json

from scaling.errors import InputError

EOS_BYTE = "\x00"


def _processor(eos: str, eos_id: int):
  from tokenizers import processors

  return processors.TemplateProcessing(single=f"{eos} $A", pair=f"{eos} $A {eos} $B",
                                       special_tokens=[(eos, eos_id)])


def _byte_tokenizer():
  from tokenizers import AddedToken, Tokenizer, decoders, models

  vocab = {EOS_BYTE: 0, **{f"<0x{b:02X}>": b for b in range(1, 256)}}
  tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True))
  tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
  tokenizer.add_special_tokens([AddedToken(EOS_BYTE, special=True, normalized=False)])
  tokenizer.post_processor = _processor(EOS_BYTE, 0)
  return tokenizer, EOS_BYTE


def _spm_tokenizer(model_proto: bytes, eos_id: int):
  from sentencepiece import sentencepiece_model_pb2
  from tokenizers import AddedToken
  from transformers.convert_slow_tokenizer import SpmConverter

  proto = sentencepiece_model_pb2.ModelProto.FromString(model_proto)
  if proto.trainer_spec.model_type == 2:  # BPE: a vocabulary; merges follow from the scores
    vocab = {piece.piece: i for i, piece in enumerate(proto.pieces)}
  elif proto.trainer_spec.model_type == 1:  # unigram: (piece, score) by id
    # SentencePiece never segments text into unk or control pieces ("</s>" in text is text).
    vocab = [(piece.piece, -1e9 if piece.type in (2, 3) else piece.score) for piece in proto.pieces]
  else:
    raise InputError("data.tokenizer: only BPE and unigram SentencePiece models export to "
                     "Hugging Face")
  tokenizer = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab)
  eos = proto.pieces[eos_id].piece
  tokenizer.add_special_tokens([AddedToken(eos, special=True, normalized=False)])
  tokenizer.post_processor = _processor(eos, eos_id)
  return tokenizer, eos


def files(tokenizer, model_proto: bytes | None) -> dict[str, bytes]:
  """{file name: content} for `tokenizer` (ours); `model_proto` the SentencePiece model, if any."""
  if tokenizer.identity["kind"] == "bytes":
    hf_tokenizer, eos = _byte_tokenizer()
  else:
    hf_tokenizer, eos = _spm_tokenizer(model_proto, tokenizer.eos_id)
  config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos, "bos_token": eos,
            "model_max_length": 1 << 30, "clean_up_tokenization_spaces": False,
            "add_bos_token": False, "add_eos_token": False,
            # Text that spells eos ("</s>") is text, as for SentencePiece itself, not the separator.
            "split_special_tokens": True}
  out = {"tokenizer.json": hf_tokenizer.to_str(pretty=True).encode(),
         "tokenizer_config.json": (json.dumps(config, indent=2) + "\n").encode()}
  if model_proto is not None:
    out["tokenizer.model"] = model_proto
  return out
