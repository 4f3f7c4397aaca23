"""Errors for bad evaluation inputs: one type per failure, all under :class:`EvaluationInputError`.

Each carries ``kind`` (a stable machine-readable name), ``message`` (what is wrong and where, with file and
line numbers when they exist) and ``source`` (the file concerned, when there is one). The command line prints
``<ErrorType>: <message>`` and exits with status 2, without a traceback.
"""

from __future__ import annotations


class EvaluationInputError(ValueError):
    """Base class: the scores, keys, attacks, manifest or predictions cannot be evaluated as given."""

    kind = "evaluation_input"

    def __init__(self, message: str, source: str | None = None):
        self.message = message
        self.source = source
        super().__init__(message)


class UnreadableInputError(EvaluationInputError):
    """An input file is missing, is a directory, or is not UTF-8 text."""

    kind = "unreadable"


class MalformedInputError(EvaluationInputError):
    """A line cannot be read: no usable header, wrong number of fields, a score that is not a number, bad JSON,
    or a required field missing. The message names ``file:line``."""

    kind = "malformed"


class DuplicateIdError(EvaluationInputError):
    """The same trial id occurs more than once in one file."""

    kind = "duplicate_id"


class AmbiguousIdError(EvaluationInputError):
    """An id matches no key exactly and its file stem matches several keys."""

    kind = "ambiguous_id"


class MissingIdsError(EvaluationInputError):
    """Ids present on one side (scores, keys, attacks) have no counterpart on the other."""

    kind = "missing_ids"


class NonFiniteScoreError(EvaluationInputError):
    """A score is NaN or infinite."""

    kind = "non_finite_score"


class UnknownLabelError(EvaluationInputError):
    """A label is neither ``bonafide`` nor ``spoof``."""

    kind = "unknown_label"


class LabelMismatchError(EvaluationInputError):
    """A manifest gives a trial another label than the keys."""

    kind = "label_mismatch"


class SingleClassError(EvaluationInputError):
    """Only one class (bona fide or spoof) is left to evaluate: no error rate can be measured."""

    kind = "single_class"


class DetectorOutputError(EvaluationInputError):
    """A detector returned something other than one finite P(spoof) in [0, 1] per clip."""

    kind = "detector_output"
