"""The Docker image installs exactly docker/requirements.lock: it must hold every package
setup.cfg requires, at a version the requirement accepts (``scripts/images lock`` writes it
anew when setup.cfg changes)."""
import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_lock_satisfies_every_requirement_of_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = [Requirement(line) for line in config["options"]["install_requires"].strip().splitlines()]
    locked = {}
    for line in (ROOT / "docker" / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            locked[canonicalize_name(name)] = version.strip()
    unmet = [f"{requirement} (lock: {locked.get(canonicalize_name(requirement.name), 'absent')})"
             for requirement in required
             if canonicalize_name(requirement.name) not in locked
             or not requirement.specifier.contains(locked[canonicalize_name(requirement.name)], prereleases=True)]
    assert unmet == [], "run scripts/images lock"
