"""Train on a table, test on real rows with a scikit-learn model: the second classifier of the utility
score next to mlgen's MLP, run on decoded rows (the original columns), so any generator's table, mlgen's
or another library's, is scored the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SKLEARN_MODELS = ("logistic_regression", "random_forest")


def sklearn_accuracy(train: pd.DataFrame, test: pd.DataFrame, target: str, categorical: Sequence[str],
                     model: str = "logistic_regression", seed: int = 0) -> float:
    """Accuracy on `test` of `model` fitted on `train`: categories one-hot (unseen ones ignored),
    numbers median-imputed and standardised, as any scikit-learn user would."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if model not in SKLEARN_MODELS:
        raise ValueError(f"model={model!r}: choose one of {SKLEARN_MODELS}")
    features = [c for c in train.columns if c != target]
    cats = [c for c in features if c in categorical]
    nums = [c for c in features if c not in categorical]
    y_train = train[target].astype(str).to_numpy()
    if len(np.unique(y_train)) < 2:  # a generator that made one class only: the model can only guess it
        return float(np.mean(test[target].astype(str).to_numpy() == y_train[0]))
    prepare = ColumnTransformer([
        ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                     OneHotEncoder(handle_unknown="ignore")), cats),
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
    ])
    classifier = (LogisticRegression(max_iter=2000) if model == "logistic_regression"
                  else RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1))
    pipeline = make_pipeline(prepare, classifier)
    as_object = {c: train[c].astype("object") for c in cats}
    pipeline.fit(train.assign(**as_object)[features], y_train)
    test_x = test.assign(**{c: test[c].astype("object") for c in cats})[features]
    return float(np.mean(pipeline.predict(test_x) == test[target].astype(str).to_numpy()))
