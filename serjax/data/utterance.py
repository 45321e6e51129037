"""The record of one audio file of a corpus: path, corpus, speaker, label, gender."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping

__all__ = ["Utterance"]


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One audio file of a corpus.

    Attributes:
      path: the audio file.
      corpus: one of ``CORPORA``.
      speaker: the speaker's id as written in the corpus (``"03"``, ``"12"``, ``"OAF"``).
      label: a canonical emotion name (see ``serjax.data.labels``).
      gender: ``"male"``, ``"female"`` or None when the corpus does not say.
      extra: string fields of the name: always ``"id"`` (unique within the corpus) and
        ``"code"`` (the corpus's own emotion code), plus per-corpus fields such as RAVDESS's
        ``"intensity"`` or CREMA-D's ``"level"``. Treat as read-only.
    """

    path: pathlib.Path
    corpus: str
    speaker: str
    label: str
    gender: str | None = None
    extra: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)

    @property
    def speaker_id(self) -> str:
        """``corpus:speaker``: unique across corpora (RAVDESS and Emo-DB both have a "03")."""
        return f"{self.corpus}:{self.speaker}"
