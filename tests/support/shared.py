"""Locate the project's shared reference material (../shared beside the checkout).

CI clones the repository into another folder with a copy of shared/ beside it, so paths are
resolved from the checkout, not hard-coded.
"""

from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shared_path(relative: str) -> str:
    """Path of ``shared/<relative>``; the first candidate that exists, else the first one."""
    candidates = [os.path.join(os.path.dirname(REPO), "shared", relative), os.path.join("/work/shared", relative)]
    for path in candidates:
        if os.path.exists(path):
            return path
    return candidates[0]
