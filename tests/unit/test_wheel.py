"""The wheel (what the Docker image installs) holds every module of the source tree and
imports each of them, installed on its own, away from the source tree."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tracker", "agents", "tables", "web")


def source_modules() -> set[str]:
    return {str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if "__pycache__" not in path.parts}


def source_copy(target: Path) -> Path:
    """The files git tracks, and the map's fetched assets, copied to ``target``: a build
    there cannot pick up what an earlier build left in the tree (``build/``)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    vendor = ROOT / "web" / "static" / "vendor"
    if vendor.is_dir():
        shutil.copytree(vendor, target / "web" / "static" / "vendor")
    return target


def test_a_built_wheel_holds_and_imports_every_module(tmp_path):
    source = source_copy(tmp_path / "source")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert source_modules() - names == set()
    assert {"web/openapi.yaml", "web/templates/live_markers.js"} <= names

    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    modules = sorted(name[:-3].replace("/", ".").removesuffix(".__init__") for name in names
                     if name.endswith(".py") and name.split("/")[0] in PACKAGES and not name.endswith("__main__.py"))
    script = ("import importlib, sys\n"
              "for name in sys.argv[1:]:\n"
              "    module = importlib.import_module(name)\n"
              f"    assert module.__file__.startswith({str(target)!r}), module.__file__\n")
    imported = subprocess.run([sys.executable, "-c", script, *modules], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target),
                                                "TRACKER_STORE": "memory://", "HOME": str(tmp_path)})
    assert imported.returncode == 0, imported.stderr[-2000:]
