"""Reading a pipeline's text into checked values: the TOML file, its nesting, and settings against a schema."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from molplat.errors import ValidationError
from molplat.plugins import close_match
from molplat.specs import Setting

MAX_DEPTH = 16
MAX_FILE_BYTES = 8 * 1024 * 1024
#: unknown keys beyond this many are counted but not matched against the allowed ones
MATCHED_UNKNOWN = 50


def check_settings(where: str, table: dict[str, Any], schema: tuple[Setting, ...], owner: str,
                    base: Path, check_paths: bool = True) -> tuple[dict, list[str]]:
    problems: list[str] = []
    by_name = {s.name: s for s in schema}
    resolved: dict[str, Any] = {}
    unknown = 0
    for key, value in table.items():
        setting = by_name.get(key)
        if setting is None:
            unknown += 1
            hint = close_match(str(key), list(by_name)) if unknown <= MATCHED_UNKNOWN else ""
            allowed = ", ".join(by_name) or "none"
            problems.append(f"{where}: unknown key {key!r} for {owner}{hint} (allowed keys: {allowed})")
            continue
        problem = setting.check(value)
        if problem:
            problems.append(f"{where} {key}: {problem}")
            resolved[key] = value
            continue
        value = setting.resolve_path(value, base)
        if check_paths and setting.type == "path" and setting.must_exist and value and not Path(value).exists():
            problems.append(f"{where} {key}: {value} does not exist; fix the path (relative paths are read from "
                            f"the pipeline file's folder, {base})")
        resolved[key] = value
    for setting in schema:
        if setting.name not in resolved:
            if setting.required:
                problems.append(f"{where}: missing required key {setting.name!r} for {owner} ({setting.help})")
            resolved[setting.name] = copy.deepcopy(setting.resolve_path(setting.default, base))
    return resolved, problems


def depth_problem(raw: Any) -> str | None:
    """Arrays and tables nested deeper than MAX_DEPTH, found without recursion."""
    stack = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"arrays or tables are nested more than {MAX_DEPTH} levels deep; no pipeline needs that"
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A pipeline file as a dict, or one ValidationError line naming the file and the fix."""
    label = str(path)
    if not path.is_file():
        raise ValidationError("pipeline file not found; check the path", source=label)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValidationError(f"the file has {path.stat().st_size} bytes, more than a pipeline's "
                              f"{MAX_FILE_BYTES}; pass a pipeline TOML file", source=label)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file "
                              f"as UTF-8", source=label) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"not valid TOML: {exc}", source=label) from None
    except RecursionError:
        raise ValidationError(f"arrays or tables are nested more than {MAX_DEPTH} levels deep; no pipeline "
                              f"needs that", source=label) from None
    return raw
