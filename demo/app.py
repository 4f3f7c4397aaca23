"""The apallm Gradio demo: ``python demo/app.py [options]``, the same as ``apallm demo [options]``.

Everything lives in :mod:`apallm.demo` and :mod:`apallm.commands.demo`; this file only starts it (e.g. for a
hosted Space).
"""

import sys

from apallm.commands.demo import main

if __name__ == "__main__":
    sys.exit(main())
