"""Domain matching: importance weights p_target(x) / p_train(x) from a probabilistic domain classifier."""
from __future__ import annotations

import numpy as np

#: Weights are clipped at this quantile so a handful of points cannot dominate.
WEIGHT_CLIP_QUANTILE = 0.99


def density_ratio_weights(train: np.ndarray, target: np.ndarray, *, seed: int) -> np.ndarray:
    """Importance weights for ``train`` rows (mean 1) that reweight it towards ``target``.

    A logistic regression separates target from training embeddings; its odds, corrected for the
    sample sizes, estimate the density ratio (Bickel et al., 2009).
    """
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([train, target]).astype(np.float64)
    y = np.concatenate([np.zeros(train.shape[0]), np.ones(target.shape[0])])
    classifier = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=seed)
    classifier.fit(x, y)
    p = np.clip(classifier.predict_proba(train.astype(np.float64))[:, 1], 1e-6, 1 - 1e-6)
    weights = p / (1.0 - p)
    weights = np.minimum(weights, np.quantile(weights, WEIGHT_CLIP_QUANTILE))
    return weights / weights.mean()
