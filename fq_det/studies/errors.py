"""The studies' error type, below every study module that raises it."""
from __future__ import annotations

__all__ = ['StudyError']


class StudyError(ValueError):
    """A study config or a study folder that cannot be used as asked."""
