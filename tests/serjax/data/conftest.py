import pathlib

import pytest
from data_testlib import real_folder


@pytest.fixture
def fixtures_dir() -> pathlib.Path:
    """The untouched corpus samples under $SERJAX_DATA_DIR/fixtures."""
    return real_folder("fixtures")
