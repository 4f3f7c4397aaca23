import sys

from apallm.commands import main

sys.exit(main())
