"""Where the lessons find the real, human-labelled sets (reviews, SMS spam, Brown POS tags,
English-Spanish verses): the folder $SCRATCHGPT_REAL_DATA names, else the project's
`../shared/data/real` beside this checkout. They are not part of the package: their provenance
and licences are in that folder's README."""

import os
from pathlib import Path

from ..errors import DataError

BESIDE_CHECKOUT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real"


def real_data_dir():
    """The folder of the real sets, or a DataError that says where to put it."""
    folder = Path(os.environ.get("SCRATCHGPT_REAL_DATA") or BESIDE_CHECKOUT)
    if not folder.is_dir():
        raise DataError(f"the real data sets are not at {folder}: set SCRATCHGPT_REAL_DATA to their folder")
    return folder
