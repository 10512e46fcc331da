"""The Elman RNN's own cost, by hand; the stack it shares with the LSTM (parameters, decoding,
training) is tested for both in tests/models/test_lstm.py."""

from scaling import models
from scaling.models import ModelConfig


def test_rnn_flops_per_token_by_hand():
  # D=64 N=2 V=256 S=64, rmsnorm, untied. Layer: w_x, w_h 2·64·64 = 8_192 + b 64 = 8_256;
  # ×2 = 16_512; + 2 rmsnorms 128 -> non_embedding 16_640; embedding 2·256·64 = 32_768.
  cfg = ModelConfig(arch="rnn", d_model=64, n_layers=2, vocab_size=256, seq_len=64)
  assert models.get("rnn").param_counts(cfg) == {
      "total": 49_408, "embedding": 32_768, "non_embedding": 16_640}
  # Forward per token: embedding 2·256·64 = 32_768 + 2 layers × 2·(64+64)·64 = 32_768 + logits
  # 32_768 = 98_304; ×3 = 294_912. kaplan = 6n = 6·16_640 = 99_840; 6n_total = 6·49_408 = 296_448.
  assert models.get("rnn").flops_per_token(cfg) == {
      "kaplan": 99_840.0, "chinchilla": 294_912.0, "6n": 99_840.0, "6n_total": 296_448.0}
