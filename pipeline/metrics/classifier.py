"""A small bar classifier trained on the training split, and the scores it gives generated bars.

The classifier is a one-hidden-layer MLP (scikit-learn, L-BFGS) on the fixed features of
:mod:`pipeline.metrics.features`: cheap to train, deterministic for a seed. Its hidden layer is a
learned embedding (registered as ``classifier`` in :mod:`pipeline.metrics.embeddings`); its
class probabilities give the class accuracy of conditional samples and the inception score
``exp(E_x KL(p(y|x) || p(y)))`` (1 = one class or uninformative, number of classes at best).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from pipeline.metrics.features import array_key, cached, features_for


class BarClassifier:
    """Standardised features -> ``hidden`` ReLU units -> class probabilities."""

    def __init__(self, hidden: int = 32, seed: int = 0, max_iter: int = 300):
        self.scaler = StandardScaler()
        self.model = MLPClassifier(
            hidden_layer_sizes=(hidden,),
            solver="lbfgs",
            alpha=1e-2,
            max_iter=max_iter,
            random_state=seed,
        )

    @property
    def classes(self) -> np.ndarray:
        return self.model.classes_

    def fit(self, features: np.ndarray, labels: np.ndarray) -> BarClassifier:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(self.scaler.fit_transform(features), labels)
        return self

    def embed(self, features: np.ndarray) -> np.ndarray:
        """The hidden (penultimate) layer's activations, ``[N, hidden]``."""
        hidden = self.scaler.transform(features) @ self.model.coefs_[0] + self.model.intercepts_[0]
        return np.maximum(hidden, 0.0)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``[N, n_classes]``, columns in the order of :attr:`classes`."""
        return self.model.predict_proba(self.scaler.transform(features))

    def accuracy(self, features: np.ndarray, labels: np.ndarray) -> float:
        predicted = self.classes[self.probabilities(features).argmax(1)]
        return float(np.mean(predicted == np.asarray(labels)))


def inception_score(probabilities: np.ndarray) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the set's mean prediction."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    marginal = p.mean(0, keepdims=True)
    return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def has_labels(labels: np.ndarray | None) -> bool:
    return labels is not None and len(np.unique(labels)) >= 2


def trained_classifier(train: np.ndarray, options: dict[str, Any]) -> BarClassifier | None:
    """The classifier fitted on the training split, or None when there are not two classes."""
    labels = options.get("train_labels")
    if not has_labels(labels) or len(labels) != len(train):
        return None
    hidden = int(options.get("classifier_hidden", 32))
    seed = int(options.get("seed", 0))

    def fit() -> BarClassifier:
        return BarClassifier(hidden=hidden, seed=seed).fit(
            features_for(train, options).embedding, np.asarray(labels)
        )

    return cached(options, ("classifier", *array_key(train), hidden, seed), fit)


def classifier_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, float]:
    """Class accuracy (where labels are given) and inception score, generated beside valid.

    Skipped (empty result) when the training split has fewer than two classes. Generated labels
    (``options["generated_labels"]``, the classes a conditional model was asked for) give
    ``generated.accuracy``; without them only the inception score is reported.
    """
    classifier = trained_classifier(train, options)
    if classifier is None:
        return {}
    result: dict[str, float] = {
        "classes": len(classifier.classes),
        "train.accuracy": classifier.accuracy(
            features_for(train, options).embedding, options["train_labels"]
        ),
    }
    sets = {"generated": (generated, options.get("generated_labels"))}
    if valid is not None and len(valid):
        sets["valid"] = (valid, options.get("valid_labels"))
    for name, (bars, labels) in sets.items():
        features = features_for(bars, options).embedding
        result[f"{name}.inception_score"] = inception_score(classifier.probabilities(features))
        if labels is not None and len(labels) == len(bars):
            result[f"{name}.accuracy"] = classifier.accuracy(features, labels)
        result[f"{name}.count"] = len(bars)
    return result
