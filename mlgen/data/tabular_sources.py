"""Where tables come from: a user's CSV or Parquet file, or a dataset shipped inside an installed
package (nothing is downloaded).

Shipped datasets, as `data.dataset=<name>` (default target in brackets):
- `breast_cancer` (`diagnosis`: benign/malignant): scikit-learn's Wisconsin breast cancer, 569 rows x
  30 continuous measurements.
- `wine` (`cultivar`): scikit-learn's wine recognition, 178 rows x 13 continuous measurements, 3 classes.
- `fair` (`had_affair`: yes/no, i.e. `affairs > 0`): statsmodels' Fair (1978) affairs survey, 6,366 rows.
  Its coded columns (rate_marriage, religious, educ, occupation, occupation_husb) are mapped to the
  category names statsmodels documents, so the table has real text categories next to age,
  yrs_married and children (numbers); `affairs` itself is dropped (it is the target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from mlgen.errors import DataError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: str | Path, key: str = "data.path", na_values: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (comma- or tab-separated by suffix) or Parquet file as a DataFrame with at least one row."""
    path = Path(path).expanduser()
    name = path.name.lower()
    if not path.is_file():
        raise DataError(f"{key}={str(path)!r} is invalid: no such file. Fix: give the path of a CSV or Parquet file "
                        f"(relative paths start at the run's working directory; an absolute path is safest).")
    try:
        if name.endswith(PARQUET_SUFFIXES):
            frame = pd.read_parquet(path)
        elif name.endswith(CSV_SUFFIXES):
            sep = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
            frame = pd.read_csv(path, sep=sep, na_values=list(na_values))
        else:
            raise DataError(f"{key}={str(path)!r} is invalid: the suffix says neither CSV ({', '.join(CSV_SUFFIXES)}) nor "
                            f"Parquet ({', '.join(PARQUET_SUFFIXES)}). Fix: rename the file to say which it is.")
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{key}={str(path)!r} is invalid: it could not be read as a table ({type(err).__name__}: "
                        f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no details'}). Fix: check that the file "
                        f"is a complete CSV with a header line or a Parquet file.") from None
    if frame.empty:
        raise DataError(f"{key}={str(path)!r} is invalid: the file holds no rows{'' if len(frame.columns) else ' and no columns'}. "
                        f"Fix: point it at a table with a header line and at least one row per class.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.data.copy()
    frame["diagnosis"] = pd.Series(bunch.target_names[bunch.target.to_numpy()], dtype="str")
    return frame


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame = bunch.data.copy()
    frame["cultivar"] = pd.Series(bunch.target_names[bunch.target.to_numpy()], dtype="str")
    return frame


# statsmodels.datasets.fair.NOTE, code -> name
_OCCUPATION = {
    1: "student",
    2: "farming, semi-skilled or unskilled worker",
    3: "white-collar",
    4: "teacher, nurse, artist, technician or skilled worker",
    5: "managerial, administrative or business",
    6: "professional with advanced degree",
}
FAIR_CODES = {
    "rate_marriage": {1: "very poor", 2: "poor", 3: "fair", 4: "good", 5: "very good"},
    "religious": {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"},
    "educ": {9: "grade school", 12: "high school", 14: "some college", 16: "college graduate",
             17: "some graduate school", 20: "advanced degree"},
    "occupation": _OCCUPATION,
    "occupation_husb": _OCCUPATION,
}


def _fair() -> pd.DataFrame:
    from statsmodels.datasets import fair

    frame = fair.load_pandas().data.copy()
    for column, names in FAIR_CODES.items():
        coded = frame[column].astype("int64")
        unknown = sorted(set(coded) - set(names))
        if unknown:  # a statsmodels release with other codes would otherwise turn them into NaN
            raise DataError(f"statsmodels' fair dataset has codes {unknown} in {column!r} that mlgen does not know. "
                            f"Fix: report it to mlgen with your statsmodels version.")
        frame[column] = pd.Series(coded.map(names), dtype="str")
    frame["had_affair"] = pd.Series(["yes" if a > 0 else "no" for a in frame.pop("affairs")], dtype="str")
    return frame


PACKAGED: dict[str, tuple[Callable[[], pd.DataFrame], str, str]] = {
    # name: (loader, default target, package that ships it)
    "breast_cancer": (_breast_cancer, "diagnosis", "scikit-learn"),
    "wine": (_wine, "cultivar", "scikit-learn"),
    "fair": (_fair, "had_affair", "statsmodels"),
}


def packaged_table(name: str) -> pd.DataFrame:
    """A shipped dataset by name (the caller checked the name)."""
    loader, _, package = PACKAGED[name]
    try:
        return loader()
    except ImportError as err:
        raise DataError(f"data.dataset={name!r} needs {package}, which is not installed ({err}). "
                        f"Fix: pip install 'mlgen[tabular]'.") from None
