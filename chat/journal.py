"""The JSON log: one file per call, written atomically; it doubles as a journal for lost rows."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def journal_name(created_at: datetime, model: str, request_id: str) -> str:
    stamp = created_at.strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}_{SAFE.sub('-', model)[:80]}_{request_id}.json"


def journal_write(directory: str, created_at: datetime, model: str, request_id: str, entry: dict[str, Any]) -> Path:
    """Write `entry` to its file: a temporary file in the same folder, then a rename."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / journal_name(created_at, model, request_id)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(entry, handle, cls=DjangoJSONEncoder, ensure_ascii=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def journal_files(directory: str) -> list[Path]:
    folder = Path(directory)
    # pathlib's * matches dot-files too: the temporary files of writes in progress are not entries.
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def journal_read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
