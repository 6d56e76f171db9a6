"""Print the third-party requirements of the assay package and the given extras, one per line.

Read from pyproject.toml so the list is never restated; run by hack/images/install-assay.sh inside the image
and by hack/images.sh on the host (its cache key: a pyproject.toml edit elsewhere rebuilds nothing).
Usage: python3 dependencies.py PYPROJECT EXTRA[,EXTRA...]
"""

import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
wanted = list(project["dependencies"])
for extra in sys.argv[2].split(","):
    # Self-references such as "assay[runner]" are covered by naming those extras.
    wanted += [d for d in project["optional-dependencies"][extra] if not d.startswith(project["name"] + "[")]
print("\n".join(wanted))
