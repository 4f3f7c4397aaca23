import sys

from apallm.cli import main

sys.exit(main())
