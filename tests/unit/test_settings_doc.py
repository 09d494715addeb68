"""docs/settings.md lists every setting of tracker/settings.py, nothing else, with the code's
defaults: a setting added without its row, or a row left behind by a removed one, fails here."""
import ast
import dataclasses
import re
from pathlib import Path

import pytest

from tracker import settings as settings_module
from tracker.settings import Settings

ROOT = Path(__file__).parents[2]
HEADER = "| variable | default | meaning |"
NO_VALUE = ("none", "unset")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def documented() -> dict[str, str]:
    """The settings table of docs/settings.md: variable name → its default cell."""
    lines = (ROOT / "docs" / "settings.md").read_text().splitlines()
    assert lines.count(HEADER) == 1, f"docs/settings.md has one table headed {HEADER!r}"
    start = lines.index(HEADER) + 2  # past the header and its --- line
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        variable, default, meaning = _cells(line)
        name = re.fullmatch(r"`(TRACKER_[A-Z0-9_]+)`", variable)
        assert name, f"not one variable in backticks: {variable!r}"
        assert name[1] not in rows, f"{name[1]} is in the table twice"
        assert meaning, f"{name[1]} has no meaning"
        rows[name[1]] = default
    return rows


def variables_by_field() -> dict[str, str]:
    """Each field of Settings → the environment variable ``Settings.from_env`` reads it from."""
    tree = ast.parse(Path(settings_module.__file__).read_text())
    from_env = next(node for node in ast.walk(tree)
                    if isinstance(node, ast.FunctionDef) and node.name == "from_env")
    call = next(node for node in ast.walk(from_env)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "cls")
    names = {}
    for keyword in call.keywords:
        found = {node.value for node in ast.walk(keyword.value)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and re.fullmatch(r"TRACKER_[A-Z0-9_]+", node.value)}
        assert len(found) == 1, f"{keyword.arg} is read from {sorted(found)}, not one variable"
        names[keyword.arg] = found.pop()
    return names


FIELDS = variables_by_field()
DEFAULTS = Settings.from_env({})


def test_every_field_is_read_from_one_variable():
    assert set(FIELDS) == {field.name for field in dataclasses.fields(Settings)}
    assert len(set(FIELDS.values())) == len(FIELDS)


def test_every_setting_is_in_the_table():
    missing = sorted(set(FIELDS.values()) - set(documented()))
    assert not missing, f"settings not in docs/settings.md: {missing}"


def test_every_row_is_a_setting():
    unknown = sorted(set(documented()) - set(FIELDS.values()))
    assert not unknown, f"rows of docs/settings.md that are no setting: {unknown}"


def _expected(value) -> str | None:
    """How the table writes a default, or None for no value."""
    if value is None or value == "" or value == ():
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_the_documented_default_is_the_code_s(field):
    rows = documented()
    assert FIELDS[field] in rows, f"{FIELDS[field]} is not in docs/settings.md"
    cell = rows[FIELDS[field]]
    value = getattr(DEFAULTS, field)
    plain = re.fullmatch(r"`([^`]*)`", cell)
    if plain:
        written = plain[1]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert float(written) == value, f"{FIELDS[field]}: {cell} in the table, {value!r} in the code"
        else:
            assert written == _expected(value), f"{FIELDS[field]}: {cell} in the table, {value!r} in the code"
    elif cell.startswith(NO_VALUE):
        assert _expected(value) is None, f"{FIELDS[field]}: no default in the table, {value!r} in the code"
    else:  # described in words (OpenStreetMap's attribution): at least there is one
        assert _expected(value) is not None, f"{FIELDS[field]}: {cell!r} in the table, no default in the code"


def test_the_table_is_read():
    """The parsing above finds the rows it should (a table it missed would pass everything)."""
    rows = documented()
    assert rows["TRACKER_TOPIC_PARTITIONS"] == "`8`" and rows["TRACKER_WORKER_ID"] == "none"
    assert FIELDS["topic_partitions"] == "TRACKER_TOPIC_PARTITIONS"
