"""A bar classifier trained on the training split, and the scores it gives generated bars.

Two classifiers (option ``classifier``, params ``evaluate.classifier``):

- ``mlp`` (default): a one-hidden-layer MLP (scikit-learn, L-BFGS) on the fixed features of
  :mod:`pipeline.metrics.features`: cheap to train, deterministic for a seed. Its hidden layer is
  a learned embedding (registered as ``classifier`` in :mod:`pipeline.metrics.embeddings`,
  whichever classifier gives the inception score);
- ``wavegan``: WaveGAN's CNN on log-mel spectrograms (:mod:`pipeline.metrics.wavegan_classifier`),
  ``classifier_epochs`` epochs, ``classifier_channels`` wide.

Either one's class probabilities give the class accuracy of conditional samples and the
inception score with its bootstrap interval and the paper's split statistic
(:mod:`pipeline.metrics.inception`). The result carries the protocol of the classifier used.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from pipeline.metrics import bootstrap, features
from pipeline.metrics.features import array_key, cached, features_for
from pipeline.metrics.inception import DEFAULT_SPLITS, inception_summary
from pipeline.metrics.spec import QUALITY, Headline, MetricSpec
from pipeline.metrics.wavegan_classifier import WaveganClassifier

CLASSIFIERS = ("mlp", "wavegan")
_SHARED = (
    "inception score exp(E KL(p(y|x) || p(y))) of a classifier trained on the training split's "
    "labels (Donahue et al. 2019 protocol); <set>.inception_score.split_mean / .split_std: mean "
    "and population std over inception_splits equal splits of the shuffled bars, as WaveGAN's "
    "eval/inception/score.py; .ci_low / .ci_high: bootstrap over bars"
)
PROTOCOLS = {
    "mlp": f"{_SHARED}; here a small MLP on our fixed features, not WaveGAN's classifier",
    "wavegan": f"{_SHARED}; here WaveGAN's classifier (eval/inception/train.py: 4 conv blocks "
    "on 128-bin log-mel, 1024/128 STFT at 16 kHz), trained here with Adam for a fixed number of "
    "epochs; comparable with the paper's numbers only on its data and with its trained weights",
}

OPTIONS: dict[str, Any] = {
    "classifier": "mlp",
    "classifier_epochs": 20,
    "classifier_channels": 128,
    "inception_splits": DEFAULT_SPLITS,
    **bootstrap.OPTIONS,
    **features.OPTIONS,
}
HIDDEN_UNITS = 32  # the MLP's hidden layer


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


def class_accuracy(classes: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class (columns in the order of ``classes``) is their
    label."""
    return float(np.mean(classes[probabilities.argmax(1)] == np.asarray(labels)))


def has_labels(labels: np.ndarray | None) -> bool:
    return labels is not None and len(np.unique(labels)) >= 2


def trained_classifier(train: np.ndarray, options: dict[str, Any]) -> BarClassifier | None:
    """The classifier fitted on the training split, or None when there are not two classes."""
    labels = options.get("train_labels")
    if not has_labels(labels) or len(labels) != len(train):
        return None
    hidden = HIDDEN_UNITS
    seed = int(options.get("seed", OPTIONS["seed"]))

    def fit() -> BarClassifier:
        return BarClassifier(hidden=hidden, seed=seed).fit(
            features_for(train, options).embedding, np.asarray(labels)
        )

    return cached(options, ("classifier", *array_key(train), hidden, seed), fit)


def classifier_name(options: dict[str, Any]) -> str:
    name = options.get("classifier", OPTIONS["classifier"])
    if name not in CLASSIFIERS:
        raise ValueError(
            f"evaluate.classifier is {name!r}: the inception-score classifier must be one of "
            f"{list(CLASSIFIERS)}"
        )
    return name


def trained_wavegan(train: np.ndarray, options: dict[str, Any]) -> WaveganClassifier | None:
    """WaveGAN's CNN fitted on the training split, or None when there are not two classes."""
    labels = options.get("train_labels")
    if not has_labels(labels) or len(labels) != len(train):
        return None
    settings = (
        int(options["sample_rate"]),
        int(options.get("classifier_epochs", OPTIONS["classifier_epochs"])),
        int(options.get("classifier_channels", OPTIONS["classifier_channels"])),
        int(options.get("seed", OPTIONS["seed"])),
    )
    for key, value in zip(("classifier_epochs", "classifier_channels"), settings[1:3], strict=True):
        if value < 1:
            raise ValueError(f"evaluate.{key} is {value}: it must be at least 1")

    def fit() -> WaveganClassifier:
        return WaveganClassifier(*settings).fit(train, np.asarray(labels))

    return cached(options, ("wavegan_classifier", *array_key(train), *settings), fit)


def _probabilities(
    train: np.ndarray, options: dict[str, Any]
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
    """The chosen classifier's classes and ``bars -> [N, classes]`` probabilities."""
    if classifier_name(options) == "wavegan":
        cnn = trained_wavegan(train, options)
        return None if cnn is None else (cnn.classes, cnn.probabilities)
    mlp = trained_classifier(train, options)
    if mlp is None:
        return None
    return mlp.classes, lambda bars: mlp.probabilities(features_for(bars, options).embedding)


def classifier_scores(
    generated: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Class accuracy (where labels are given) and inception score, generated beside valid
    (and the training split's own score, which papers report as the real-data reference).

    Skipped (empty result) when the training split has fewer than two classes. Generated labels
    (``options["generated_labels"]``, the classes a conditional model was asked for) give
    ``generated.accuracy``; without them only the inception score is reported.
    """
    chosen = _probabilities(train, options)
    if chosen is None:
        return {}
    classes, probabilities = chosen
    on_train = probabilities(train)
    result: dict[str, Any] = {
        "classes": len(classes),
        "train.accuracy": class_accuracy(classes, on_train, options["train_labels"]),
        # the training clips' own score: the paper's "real (train)" reference
        **inception_summary("train.inception_score", on_train, options),
    }
    sets = {"generated": (generated, options.get("generated_labels"))}
    if valid is not None and len(valid):
        sets["valid"] = (valid, options.get("valid_labels"))
    for name, (bars, labels) in sets.items():
        p = probabilities(bars)
        result.update(inception_summary(f"{name}.inception_score", p, options))
        if labels is not None and len(labels) == len(bars):
            result[f"{name}.accuracy"] = class_accuracy(classes, p, labels)
        result[f"{name}.count"] = len(bars)
    result["protocol"] = PROTOCOLS[classifier_name(options)]
    return result


SPEC = MetricSpec(
    name="classifier",
    function=classifier_scores,
    options=OPTIONS,
    protocol=PROTOCOLS["mlp"],  # the default; the result says which classifier was used
    role=QUALITY,
    headlines=(
        Headline("inception_score", "higher", band=0.25, relative=True),
        Headline("accuracy", "higher", band=0.25),
    ),
)
