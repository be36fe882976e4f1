"""Build the spark-submit --py-files archive: the campaignlake package, without caches.

python scripts/build_pyfiles.py dist/campaignlake-pyfiles.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "campaignlake"


def main(target: str) -> None:
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE.rglob("*.py")):
            archive.write(path, path.relative_to(PACKAGE.parent).as_posix())
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist/campaignlake-pyfiles.zip")
