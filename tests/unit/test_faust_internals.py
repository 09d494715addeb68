"""``tracker.stream.faust_internals`` is the one module that touches private state of
faust-streaming or aiokafka, and it refuses versions or names it was not written for."""
import re
from pathlib import Path

import aiokafka
import faust
import pytest

from tracker.stream import faust_internals
from tracker.stream.faust_internals import IncompatibleInternals

ROOT = Path(__file__).resolve().parents[2]
FENCE = ROOT / "tracker" / "stream" / "faust_internals.py"
PROJECT = [path for folder in ("agents", "tables", "web", "tracker", "bench")
           for path in sorted((ROOT / folder).rglob("*.py")) if path != FENCE]
#: A private name on an object that is not ``self`` (nor ``cls``).
ACCESS = re.compile(r"(?<![\w.])(?!self\.|cls\.)[A-Za-z_][\w.()\[\]]*?\.(_[A-Za-z]\w*)\b")
DEFINED = re.compile(r"(?:self\.(_[A-Za-z]\w*)\s*[:=]|def (_[A-Za-z]\w*)|^\s+(_[A-Za-z]\w*)\s*[:=])", re.M)
#: Parts of the public API of named tuples, which begin with an underscore.
NAMEDTUPLE = {"_asdict", "_fields", "_replace", "_make"}


def private_names(paths) -> set[str]:
    names = set()
    for path in paths:
        for match in DEFINED.finditer(path.read_text(errors="replace")):
            names.update(name for name in match.groups() if name)
    return names


def test_no_module_but_the_fence_touches_faust_or_aiokafka_private_state():
    theirs = private_names(Path(faust.__file__).parent.rglob("*.py")) | private_names(
        Path(aiokafka.__file__).parent.rglob("*.py"))
    ours = private_names(PROJECT)
    suspects = theirs - ours - NAMEDTUPLE
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in PROJECT for number, line in enumerate(path.read_text().splitlines(), 1)
             if not line.lstrip().startswith("#")
             for match in ACCESS.finditer(line) if match.group(1) in suspects]
    assert found == [], "private state of faust-streaming or aiokafka outside tracker/stream/faust_internals.py"


def test_the_fence_itself_is_found_by_the_same_search():
    """The search above would see the fence's own accesses (so it can see anyone's)."""
    theirs = private_names(Path(faust.__file__).parent.rglob("*.py"))
    lines = FENCE.read_text().splitlines()
    assert any(match.group(1) in theirs for line in lines for match in ACCESS.finditer(line))


def test_another_release_is_refused_in_one_line():
    with pytest.raises(IncompatibleInternals) as refused:
        faust_internals.check({"faust-streaming": "0.15.4"}, {})
    message = str(refused.value)
    assert "\n" not in message
    assert "faust-streaming 0.15.3 is installed" in message and "written for 0.15.4" in message


def test_a_name_that_is_gone_is_refused_in_one_line():
    class Consumer:
        def __init__(self) -> None:
            self._acked = {}

    faust_internals.check({}, {Consumer: ("_acked",)})
    with pytest.raises(IncompatibleInternals) as refused:
        faust_internals.check({}, {Consumer: ("_acked", "_acked_index")})
    assert "has no _acked_index any more" in str(refused.value) and "\n" not in str(refused.value)
