"""Model families. Importing this package registers every architecture."""

from scaling.models import transformer  # noqa: F401  registers "transformer"
from scaling.models import lstm  # noqa: F401  registers "lstm"
from scaling.models import rnn  # noqa: F401  registers "rnn"
from scaling.models.config import ModelConfig
from scaling.models.registry import get, names

__all__ = ["ModelConfig", "get", "names"]
