"""Keep a torchaudio that cannot load from breaking commands that never use it.

transformers imports torchaudio whenever it is installed (``transformers.audio_utils``), so a torchaudio
built for another torch (torchaudio 2.11.1 beside torch 2.11.0 fails with ``undefined symbol``) would break
everything that touches transformers: training, ALLMs, even test collection. apallm itself imports
torchaudio only where it is used (the ``torchaudio`` resampler). This guard runs once, just before
transformers is first imported: it tries torchaudio, and if that fails to load it hides torchaudio (then
transformers treats it as absent) and warns with the fix.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

_hidden_because: str | None = None


def torchaudio_problem() -> str | None:
    """None when torchaudio loads (or is not installed); else why it does not, with the fix."""
    if "torchaudio" in sys.modules:
        return None if sys.modules["torchaudio"] is not None else _hidden_because
    try:
        import torchaudio  # noqa: F401
    except ModuleNotFoundError:
        return None
    except (ImportError, OSError) as exc:
        sys.modules.pop("torchaudio", None)
        try:
            from importlib.metadata import version

            want = f"pip install 'torchaudio=={version('torch').split('+')[0]}'"
        except Exception:  # torch itself broken: the message still names the mismatch
            want = "install the torchaudio release that matches your torch"
        return f"torchaudio does not load beside this torch ({str(exc).splitlines()[0][:200]}): {want}"
    return None


class _Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "transformers":
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Guard)]
            global _hidden_because
            problem = torchaudio_problem()
            if problem:
                _hidden_because = problem
                sys.modules["torchaudio"] = None  # importlib.util.find_spec now says: not installed
                warnings.warn(f"{problem}; going on without torchaudio", RuntimeWarning, stacklevel=2)
        return None  # the normal finders import transformers


def install() -> None:
    if "transformers" not in sys.modules and not any(isinstance(f, _Guard) for f in sys.meta_path):
        sys.meta_path.insert(0, _Guard())
