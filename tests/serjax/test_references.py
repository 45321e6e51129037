"""The reference systems' table: every S-name used in the configs is identified, and the README
shows the table as the code holds it."""

import re
from pathlib import Path

from serjax import references

ROOT = Path(__file__).resolve().parents[2]


def test_every_reference_system_names_existing_configs():
    names = [s.name for s in references.REFERENCE_SYSTEMS]
    assert names == ["S1", "S2", "S3", "S4", "S5"]
    for system in references.REFERENCE_SYSTEMS:
        for config in system.configs:
            assert (ROOT / "configs" / f"{config}.py").is_file(), config


def test_every_s_name_in_the_configs_is_a_reference_system():
    known = {s.name for s in references.REFERENCE_SYSTEMS}
    used = set()
    for path in (ROOT / "configs").glob("*.py"):
        used |= set(re.findall(r"\bS\d+\b", path.read_text()))
    assert used and used <= known


def test_the_readme_shows_the_table():
    assert references.markdown_table() in (ROOT / "README.md").read_text()
