"""WaveGAN's inception classifier: its log-mel front end, that it learns labelled clips, and that
its inception score ranks real clips above noise and silence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.metrics.classifier import PROTOCOLS, class_accuracy, classifier_scores
from pipeline.metrics.inception import inception_score
from pipeline.metrics.registry import PROTOCOL_KEY, compute_all
from pipeline.metrics.wavegan_classifier import (
    MEL_HIGH_HZ,
    MEL_LOW_HZ,
    LogMel,
    WaveganClassifier,
    WaveganCNN,
    mel_matrix,
)

SR = 16000
PITCHES_HZ = (220.0, 660.0, 1980.0)
SMALL = {"epochs": 8, "channels": 8, "device": "cpu"}


def tones(count: int, seed: int, sample_rate: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """1 s clips of one of three pitches (detuned up to 3 %, random phase and level, faint noise),
    labelled by pitch, classes in turn."""
    rng = np.random.default_rng(seed)
    t = np.arange(sample_rate) / sample_rate
    labels = np.arange(count) % len(PITCHES_HZ)
    clips = [
        rng.uniform(0.2, 0.6)
        * np.sin(
            2 * np.pi * PITCHES_HZ[c] * (1 + 0.03 * rng.uniform(-1, 1)) * t + rng.uniform(0, 7)
        )
        + 0.02 * rng.standard_normal(len(t))
        for c in labels
    ]
    return np.asarray(clips, dtype=np.float32), labels


@pytest.fixture(scope="module")
def trained() -> WaveganClassifier:
    clips, labels = tones(36, seed=0)
    return WaveganClassifier(SR, seed=0, **SMALL).fit(clips, labels)


def test_a_16384_sample_clip_is_framed_as_the_reference_frames_it():
    front = LogMel(16384)
    np.testing.assert_array_equal(front.index[:, 0].numpy(), np.arange(128) * 128)
    assert front.pad == 127 * 128 + 1024 - 16384  # pad_end: the last frames run past the end
    assert front(torch.zeros(2, 16384)).shape == (2, 128, 128)


def test_the_mel_filters_are_tensorflows_triangles():
    weights = mel_matrix()
    assert weights.shape == (513, 128)
    assert not weights[0].any()  # the DC bin weighs nothing
    assert weights.max() <= 1.0 and weights.any(0).all()  # no band is empty
    bin_hz = np.linspace(0, SR / 2, 513)
    assert bin_hz[weights.any(1)].min() > MEL_LOW_HZ and bin_hz[weights.any(1)].max() < MEL_HIGH_HZ
    peaks = bin_hz[weights.argmax(0)]
    assert (np.diff(peaks) >= 0).all()  # bands rise in frequency
    # a 1 kHz tone is loudest in the band centred nearest 1 kHz
    t = np.arange(16384) / SR
    log_mel = LogMel(16384)(torch.from_numpy(np.sin(2 * np.pi * 1000 * t)[None].astype(np.float32)))
    assert abs(peaks[int(log_mel[0].mean(1).argmax())] - 1000) < 40


def test_the_network_is_the_references():
    model = WaveganCNN(16384, n_classes=10, channels=128)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(norms) == 5  # the reference asserts 10 update ops: mean and variance of each
    assert [c.kernel_size for c in convs] == [(5, 5)] * 4
    assert [c.out_channels for c in convs] == [128] * 4
    assert model.head[-1].in_features == 8 * 8 * 128
    assert model.eval()(torch.zeros(3, 16384)).shape == (3, 10)


def test_it_learns_the_classes_of_held_out_clips(trained):
    clips, labels = tones(15, seed=1)
    assert class_accuracy(trained.classes, trained.probabilities(clips), labels) >= 0.9


def test_real_clips_score_above_noise_and_silence(trained):
    clips, _ = tones(15, seed=1)
    rng = np.random.default_rng(2)
    real = inception_score(trained.probabilities(clips))
    noise = inception_score(trained.probabilities(0.3 * rng.standard_normal(clips.shape)))
    silence = inception_score(trained.probabilities(np.zeros_like(clips)))
    assert real > 1.5
    assert real > noise + 0.5 and real > silence + 0.5, (real, noise, silence)


def test_training_is_deterministic_for_a_seed():
    clips, labels = tones(24, seed=0)
    held_out, _ = tones(6, seed=1)
    quick = {**SMALL, "epochs": 2}
    first, again, other = (
        WaveganClassifier(SR, seed=seed, **quick).fit(clips, labels).probabilities(held_out)
        for seed in (0, 0, 1)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_the_metric_resamples_bars_and_says_which_classifier_it_used():
    train, train_labels = tones(24, seed=0, sample_rate=8000)
    valid, valid_labels = tones(12, seed=1, sample_rate=8000)
    options = {
        "sample_rate": 8000,
        "classifier": "wavegan",
        "classifier_epochs": 4,
        "classifier_channels": 4,
        "inception_splits": 3,
        "bootstrap": 20,
        "train_labels": train_labels,
        "valid_labels": valid_labels,
    }
    bars = {name: clips[:, None] for name, clips in (("train", train), ("valid", valid))}
    result = compute_all(bars["valid"], bars["train"], bars["valid"], options, ["classifier"])
    scores = result["classifier"]
    assert scores[PROTOCOL_KEY] == PROTOCOLS["wavegan"] != PROTOCOLS["mlp"]
    for name in ("generated", "valid"):
        key = f"{name}.inception_score"
        assert scores[f"{key}.ci_low"] <= scores[key] <= scores[f"{key}.ci_high"]
        assert scores[f"{key}.split_std"] >= 0 and scores[f"{key}.split_mean"] >= 1
    assert scores["generated.inception_score"] == scores["valid.inception_score"]
    with pytest.raises(ValueError, match=r"evaluate\.classifier is 'vgg'"):
        classifier_scores(bars["valid"], bars["train"], None, {**options, "classifier": "vgg"})
