"""Rewards for GRPO: how good is one sampled answer to one clip. Plain functions, one float per answer.

Every reward function takes the same three sequences, one entry per answer, and returns a float array::

    reward(completions, labels, evidence) -> np.ndarray

* ``completions``: the answer texts the model wrote (special tokens removed);
* ``labels``: the clip's true label, ``bonafide`` or ``spoof`` (from the training manifest);
* ``evidence``: the clip's measured cues, anything :func:`apallm.grounding.measurements` takes (an
  :class:`apallm.evidence.Evidence`, its ``to_dict()``, a list of cues).

Built-in rewards (:data:`REWARDS`):

* ``label``: 1 when :func:`apallm.verdict.parse_answer` reads a label and it is the true one, else 0;
* ``format``: 1 when the answer parses fully (status ``full``: a label, a ``Frequency:`` line and a ``Time:``
  line), else 0;
* ``grounding``: the answer's statements checked against the clip's measurements. Its cue claims
  (:func:`apallm.grounding.check_grounding`) and its "no cue lies outside / inside the range" lines
  (:func:`apallm.grounding.check_none_statements`: true when no citable cue of that domain is measured on that
  side of its range) each earn 1 when they hold and cost :data:`CONTRADICTION_COST` when the measurements
  contradict them, averaged over the statements: in [-2, 1]; 0 for an answer with no checkable statement. So an
  answer is best off saying exactly what the clip supports: citing a cue pays only when it is measured as cited,
  and saying that nothing supports the label pays only when nothing does (a reward that checked cue claims alone,
  and gave 0 to an answer without any, taught a policy to cite on every clip);
* ``consistency``: 1 when the answer's label and its claims agree (:func:`apallm.rationale.judge_consistency`
  says consistent), -1 when its claims argue for the other label, 0 when nothing can be judged (no claim, or no
  label). A true claim that argues against the label (a cue measured within natural speech cited for a spoof
  verdict) earns its grounding and loses it here, so the policy is not paid for copying a true phrase into every
  answer.

:func:`weighted_rewards` sums them with configurable weights; :func:`group_advantages` turns the rewards of each
clip's group of answers into advantages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from apallm._imports import resolve
from apallm.grounding import check_grounding, check_none_statements
from apallm.rationale import CONSISTENT, INCONSISTENT, UNVERIFIABLE, find_claims, judge_consistency
from apallm.verdict import LABELS, parse_answer

__all__ = ["CONTRADICTION_COST", "DEFAULT_WEIGHTS", "REWARDS", "consistency_reward", "format_reward",
           "grounding_reward", "group_advantages", "label_reward", "resolve_reward",
           "weighted_rewards"]

RewardFunction = Callable[[Sequence[str], Sequence[str], Sequence[object]], np.ndarray]

#: what a contradicted statement costs in the ``grounding`` reward, against the 1 a grounded one earns: citing a
#: cue pays only where the model is right about it more than two times in three
CONTRADICTION_COST = 2.0


def _check_lengths(completions: Sequence[str], *others: Sequence) -> None:
    for other in others:
        if len(other) != len(completions):
            raise ValueError(f"one entry per completion needed: {len(completions)} completions, {len(other)} entries")


def label_reward(completions: Sequence[str], labels: Sequence[str], evidence: Sequence[object] = ()) -> np.ndarray:
    """1.0 where the answer's parsed label is the clip's true label, else 0.0 (a missing label is wrong)."""
    _check_lengths(completions, labels)
    for label in labels:
        if label not in LABELS:
            raise ValueError(f"a true label is 'bonafide' or 'spoof', got {label!r}")
    return np.array([float(parse_answer(text).label == label) for text, label in zip(completions, labels,
                                                                                      strict=True)])


def format_reward(completions: Sequence[str], labels: Sequence[str] = (), evidence: Sequence[object] = ()
                  ) -> np.ndarray:
    """1.0 where the answer is in the canonical format (label, ``Frequency:``, ``Time:``), else 0.0."""
    return np.array([float(parse_answer(text).status == "full") for text in completions])


def grounding_reward(completions: Sequence[str], labels: Sequence[str], evidence: Sequence[object]) -> np.ndarray:
    """Each answer's cue claims and "no cue supports it" lines against its clip's measurements: +1 a statement
    that holds, -:data:`CONTRADICTION_COST` one the measurements contradict, averaged over its statements."""
    _check_lengths(completions, evidence)
    out = []
    for text, measured in zip(completions, evidence, strict=True):
        report = check_grounding(text, measured)
        true_none, false_none = check_none_statements(text, measured)
        n = report.n_claims + true_none + false_none
        good = report.n_grounded + true_none
        bad = report.n_contradicted + false_none
        out.append((good - CONTRADICTION_COST * bad) / n if n else 0.0)
    return np.array(out)


def consistency_reward(completions: Sequence[str], labels: Sequence[str] = (), evidence: Sequence[object] = ()
                       ) -> np.ndarray:
    """1.0 where the answer's own label and its cited cues agree (see :mod:`apallm.rationale`), -1.0 where they
    disagree, 0.0 where nothing can be judged (no cue claim or no label)."""
    out = []
    for text in completions:
        parsed = parse_answer(text)
        judged = judge_consistency(parsed.label, find_claims(text)) if parsed.label is not None else UNVERIFIABLE
        out.append({CONSISTENT: 1.0, INCONSISTENT: -1.0}.get(judged, 0.0))
    return np.array(out)


#: the built-in rewards by the names a GRPO config uses
REWARDS: dict[str, RewardFunction] = {"label": label_reward, "format": format_reward, "grounding": grounding_reward,
                                      "consistency": consistency_reward}
#: the weights a GRPO config gets when it names none
DEFAULT_WEIGHTS = {"label": 1.0, "format": 0.5, "grounding": 0.5}


def resolve_reward(name: str) -> RewardFunction:
    """A built-in reward by name, or any function by its import path ``package.module:function``."""
    if name in REWARDS:
        return REWARDS[name]
    try:
        fn = resolve(name)
    except ValueError:
        raise ValueError(f"unknown reward {name!r}: use one of {', '.join(REWARDS)} or 'package.module:function'"
                         ) from None
    except ImportError as exc:
        raise ValueError(f"reward {name!r} cannot be imported: {exc}") from exc
    if not callable(fn):
        raise ValueError(f"reward {name!r} is not a function")
    return fn


def weighted_rewards(completions: Sequence[str], labels: Sequence[str], evidence: Sequence[object],
                     weights: Mapping[str, float], functions: Mapping[str, RewardFunction] | None = None
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The total reward of each answer, ``sum(weight * reward)``, and each named reward's values.

    Args:
        weights: ``{name: weight}``; a name is a key of ``functions``, a built-in reward or an import path.
        functions: reward functions by name, taking precedence over the built-ins.

    Raises:
        ValueError: an unknown reward, a weight that is not a finite number, or a reward function that does not
            return one finite value per answer.
    """
    _check_lengths(completions, labels, evidence)
    functions = dict(functions or {})
    total = np.zeros(len(completions))
    parts = {}
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"the weight of reward {name!r} must be a finite number, got {weight!r}")
        fn = functions.get(name) or resolve_reward(name)
        values = np.asarray(fn(list(completions), list(labels), list(evidence)), dtype=np.float64)
        if values.shape != (len(completions),) or not np.isfinite(values).all():
            raise ValueError(f"reward {name!r} must return one finite value per completion, got {values!r}")
        parts[name] = values
        total = total + float(weight) * values
    return total, parts


def group_advantages(rewards: Sequence[float] | np.ndarray, group_size: int, scale: bool = True,
                     eps: float = 1e-4) -> np.ndarray:
    """Group-normalised advantages: ``(r - mean(group)) / (std(group) + eps)``.

    ``rewards`` holds ``group_size`` consecutive answers per clip. ``std`` is the population standard deviation
    of the group, so a group's advantages have mean 0 and standard deviation just under 1; a group whose answers
    all scored the same gets zeros (nothing to prefer). ``scale=False`` leaves out the division (advantages are
    then ``r - mean``, as Dr. GRPO argues, so easy or hard clips do not weigh more).

    Raises:
        ValueError: ``group_size`` < 1 or not dividing the number of rewards.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if group_size < 1 or r.ndim != 1 or r.size % group_size:
        raise ValueError(f"{r.size} rewards do not split into groups of {group_size}")
    groups = r.reshape(-1, group_size)
    centred = groups - groups.mean(axis=1, keepdims=True)
    if scale:
        centred = centred / (groups.std(axis=1, keepdims=True) + eps)
    return centred.reshape(-1)
