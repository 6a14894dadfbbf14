"""Notice edits to a policy folder by checksum (like Prometheus' config/reload.go).

Modification times lie across copies and editors that write in place; a content checksum
of every *.yaml file below the folder does not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def folder_checksum(folder: Path) -> str:
    """sha256 over the relative path and content of every YAML file below `folder`."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.yaml")):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        try:
            with open(path, "rb") as f:  # in chunks: a huge file named by mistake is hashed, not held
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    return h.hexdigest()


class PolicyWatcher:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._last = folder_checksum(self.folder) if self.folder.exists() else ""

    def remember(self) -> None:
        """Record the folder as it is now (after a reload, successful or not)."""
        self._last = folder_checksum(self.folder)

    def changed(self) -> bool:
        """True once per edit: the content differs from what was last remembered."""
        current = folder_checksum(self.folder)
        if current == self._last:
            return False
        self._last = current
        return True
