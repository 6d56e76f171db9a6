"""``python -m assay.runner``: the task container's command."""

import sys

from assay.runner.main import main

sys.exit(main())
