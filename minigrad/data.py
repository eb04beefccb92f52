"""Datasets, a seeded DataLoader, and small toy datasets generated on the spot (no download).

``Dataset`` is anything with ``__len__`` and ``__getitem__(i)``; ``TensorDataset`` holds arrays
whose first dimension indexes samples. ``DataLoader`` walks a dataset in batches: each epoch is a
permutation of the sample indices (or ``0..n-1`` without shuffling) cut into consecutive
chunks, and each chunk is gathered by fancy indexing (``X[indices]``).

The toy generators (spirals, moons, circles, xor, blobs, sine, teacher_student) return a
`Splits`: NumPy arrays for training and validation, float32 features of shape (n, d), int64
class labels of shape (n,) or float32 regression targets of shape (n, 1). Each draws from its
own ``np.random.default_rng(seed)``, so a seed gives the same data whatever minigrad's global
seed is. Classification sets are balanced (class sizes differ by at most one) and split per
class, so both splits keep the balance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minigrad.random import default_generator
from minigrad.tensor import Tensor

# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------


class Dataset:
    """A collection of samples: ``len(dataset)`` and ``dataset[i]`` -> one sample, a tuple of
    fields (e.g. ``(features, label)``) made of arrays, Tensors or numbers."""

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: ``dataset[i]`` is
    ``(arrays[0][i], arrays[1][i], ...)``. Tensors are stored as their ``.data`` (shared, not
    copied), so items and the arrays in ``.arrays`` are NumPy arrays."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: give at least one array, e.g. TensorDataset(X, y)")
        self.arrays = tuple(value.data if isinstance(value, Tensor) else np.asarray(value) for value in arrays)
        shapes = [array.shape for array in self.arrays]
        if any(len(shape) == 0 for shape in shapes):
            raise ValueError(f"TensorDataset: every array needs a first (sample) dimension, got shapes {shapes}")
        if len({shape[0] for shape in shapes}) != 1:
            raise ValueError(
                f"TensorDataset: arrays must have the same number of samples (first dimension), got shapes {shapes}"
            )

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(array[index] for array in self.arrays)


# ----------------------------------------------------------------------------------------------
# loading in batches
# ----------------------------------------------------------------------------------------------


class DataLoader:
    """Iterate over `dataset` in batches; each batch is a tuple with one entry per field.

    batch_size: samples per batch; the last batch is smaller when ``len(dataset)`` is not a
                multiple, unless `drop_last` drops it.
    shuffle:    visit the samples in a new random order every epoch. The order comes from
                `generator` (a ``np.random.Generator``), or from ``np.random.default_rng(seed)``
                made once here, or else from minigrad's default generator at the start of each
                epoch (so ``minigrad.manual_seed`` makes runs reproducible). The generator moves
                on each epoch: one loader gives a different order every epoch, and two loaders
                with the same seed give the same sequence of orders.
    as_tensor:  yield minigrad Tensors without grad (floats keep their stored dtype, integers
                become int64 as class labels should), or the NumPy arrays with False.

    ``len(loader)`` is the number of batches per epoch: ``ceil(n / batch_size)``, or
    ``floor(n / batch_size)`` with drop_last.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, generator: np.random.Generator | None = None, as_tensor: bool = True):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: the dataset needs __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give either seed or generator, not both")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"DataLoader: generator must be a np.random.Generator, got {type(generator).__name__}; "
                "for a seed, pass seed=..."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = np.random.default_rng(seed) if seed is not None else generator
        self.as_tensor = as_tensor

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        order = self._epoch_order()
        for batch_number in range(len(self)):
            start = batch_number * self.batch_size
            yield self._gather(order[start:start + self.batch_size])

    def _epoch_order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        # Looked up every epoch: manual_seed replaces the default generator.
        generator = self.generator if self.generator is not None else default_generator()
        return generator.permutation(n)

    def _gather(self, indices: np.ndarray) -> tuple:
        # Exact type: a subclass may override __getitem__ (augmentation), so it goes item by item.
        if type(self.dataset) is TensorDataset:
            fields = tuple(array[indices] for array in self.dataset.arrays)
        else:
            fields = _stack_samples([self.dataset[int(i)] for i in indices], indices)
        if not self.as_tensor:
            return fields
        return tuple(_as_batch_tensor(field) for field in fields)


def _as_batch_tensor(field: np.ndarray) -> Tensor:
    """Integers become int64 (the dtype cross_entropy takes for class indices); the rest keep
    their dtype."""
    if field.dtype.kind in "iu":
        field = field.astype(np.int64, copy=False)
    return Tensor(field)


def _stack_samples(samples: list, indices: np.ndarray) -> tuple:
    """Turn a list of samples (tuples of fields, or single values) into one array per field."""
    samples = [sample if isinstance(sample, (tuple, list)) else (sample,) for sample in samples]
    field_count = len(samples[0])
    for index, sample in zip(indices, samples):
        if len(sample) != field_count:
            raise ValueError(
                f"DataLoader: sample {index} has {len(sample)} fields, sample {indices[0]} has {field_count}; "
                "every sample must have the same fields"
            )
    return tuple(
        np.stack([value.data if isinstance(value, Tensor) else np.asarray(value) for value in field])
        for field in zip(*samples)
    )


# ----------------------------------------------------------------------------------------------
# toy datasets
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Splits:
    """A toy dataset's training and validation data (NumPy arrays).

    Features are float32 of shape (n, d); labels int64 of shape (n,) with ``num_classes``
    classes, or regression targets float32 of shape (n, 1) with ``num_classes=None``.
    ``train`` and ``val`` wrap the arrays in TensorDatasets for a DataLoader.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    num_classes: int | None
    name: str

    @property
    def train(self) -> TensorDataset:
        return TensorDataset(self.X_train, self.y_train)

    @property
    def val(self) -> TensorDataset:
        return TensorDataset(self.X_val, self.y_val)

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, X_train {self.X_train.shape}, y_train {self.y_train.shape}, "
            f"X_val {self.X_val.shape}, y_val {self.y_val.shape}, num_classes={self.num_classes})"
        )


def _check_common(name: str, n_samples: int, n_classes: int, val_fraction: float, **spreads: float) -> None:
    """Refuse sizes too small to split, spreads (noise, cluster_std) below 0, a val_fraction
    that leaves nothing to train on."""
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2 * n_classes:
        raise ValueError(f"{name}: n_samples must be an integer >= {2 * n_classes} (two per class), got {n_samples!r}")
    for what, value in spreads.items():
        if not value >= 0:
            raise ValueError(f"{name}: {what} must be >= 0, got {value!r}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"{name}: val_fraction must be in [0, 1), got {val_fraction!r}")


def _class_sizes(n_samples: int, n_classes: int) -> list[int]:
    """Balanced class sizes: n // k each, the first n % k classes one more."""
    return [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]


def _classification_splits(name: str, features: list, val_fraction: float, rng: np.random.Generator) -> Splits:
    """`features[k]` holds class k's points. Each class sends round(size * val_fraction) random
    points to validation; both splits are then shuffled so classes are interleaved."""
    train_parts, val_parts = [], []
    for label, points in enumerate(features):
        points = points[rng.permutation(len(points))]
        n_val = round(len(points) * val_fraction)
        labels = np.full(len(points), label, dtype=np.int64)
        val_parts.append((points[:n_val], labels[:n_val]))
        train_parts.append((points[n_val:], labels[n_val:]))

    def shuffled(parts):
        X = np.concatenate([points for points, _ in parts]).astype(np.float32)
        y = np.concatenate([labels for _, labels in parts])
        order = rng.permutation(len(y))
        return X[order], y[order]

    X_train, y_train = shuffled(train_parts)
    X_val, y_val = shuffled(val_parts)
    return Splits(X_train, y_train, X_val, y_val, num_classes=len(features), name=name)


def _regression_splits(name: str, X: np.ndarray, y: np.ndarray, val_fraction: float,
                       rng: np.random.Generator) -> Splits:
    order = rng.permutation(len(X))
    n_val = round(len(X) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    X, y = X.astype(np.float32), y.reshape(-1, 1).astype(np.float32)
    return Splits(X[train], y[train], X[val], y[val], num_classes=None, name=name)


def spirals(n_samples: int = 600, n_classes: int = 2, noise: float = 0.2, turns: float = 1.0,
            val_fraction: float = 0.25, seed: int = 0) -> Splits:
    """Interleaved spiral arms, one per class (the CS231n spiral data), in 2-D.

    A point of class k has radius r ~ U(0, 1) and angle
        theta = 2 pi turns r + 2 pi k / n_classes + noise * eps,   eps ~ N(0, 1),
    at (r cos theta, r sin theta): each arm winds `turns` times around the origin, the arms are
    rotated copies of each other, and `noise` jitters the angle (in radians). No straight line
    separates the arms.
    """
    _check_common("spirals", n_samples, n_classes, val_fraction, noise=noise)
    rng = np.random.default_rng(seed)
    features = []
    for k, size in enumerate(_class_sizes(n_samples, n_classes)):
        radius = rng.uniform(0, 1, size)
        angle = 2 * np.pi * turns * radius + 2 * np.pi * k / n_classes + noise * rng.standard_normal(size)
        features.append(np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]))
    return _classification_splits("spirals", features, val_fraction, rng)


def moons(n_samples: int = 600, noise: float = 0.1, val_fraction: float = 0.25, seed: int = 0) -> Splits:
    """Two interleaving half circles (scikit-learn's make_moons), 2-D, 2 classes.

    With theta ~ U(0, pi): class 0 at (cos theta, sin theta), class 1 at
    (1 - cos theta, 0.5 - sin theta); then Gaussian noise of std `noise` on each coordinate.
    """
    _check_common("moons", n_samples, 2, val_fraction, noise=noise)
    rng = np.random.default_rng(seed)
    upper_size, lower_size = _class_sizes(n_samples, 2)
    theta = rng.uniform(0, np.pi, upper_size)
    upper = np.column_stack([np.cos(theta), np.sin(theta)])
    theta = rng.uniform(0, np.pi, lower_size)
    lower = np.column_stack([1 - np.cos(theta), 0.5 - np.sin(theta)])
    features = [points + noise * rng.standard_normal(points.shape) for points in (upper, lower)]
    return _classification_splits("moons", features, val_fraction, rng)


def circles(n_samples: int = 600, noise: float = 0.05, factor: float = 0.5, val_fraction: float = 0.25,
            seed: int = 0) -> Splits:
    """Two concentric circles (scikit-learn's make_circles), 2-D, 2 classes.

    With theta ~ U(0, 2 pi): class 0 on the unit circle (cos theta, sin theta), class 1 on the
    circle of radius `factor` < 1; then Gaussian noise of std `noise` on each coordinate.
    """
    _check_common("circles", n_samples, 2, val_fraction, noise=noise)
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor (inner radius / outer radius) must be in (0, 1), got {factor!r}")
    rng = np.random.default_rng(seed)
    features = []
    for radius, size in zip((1.0, factor), _class_sizes(n_samples, 2)):
        theta = rng.uniform(0, 2 * np.pi, size)
        points = radius * np.column_stack([np.cos(theta), np.sin(theta)])
        features.append(points + noise * rng.standard_normal(points.shape))
    return _classification_splits("circles", features, val_fraction, rng)


def xor(n_samples: int = 400, noise: float = 0.3, val_fraction: float = 0.25, seed: int = 0) -> Splits:
    """Four Gaussian clusters at the corners (+-1, +-1), 2-D, 2 classes: the XOR problem.

    A point is corner c + noise * eps (eps ~ N(0, I)); its class is 1 when the corner's two
    signs differ ((1, -1) and (-1, 1)) and 0 when they agree, so no line separates the classes.
    Each class's points are split evenly between its two corners.
    """
    _check_common("xor", n_samples, 2, val_fraction, noise=noise)
    rng = np.random.default_rng(seed)
    corners_of_class = ([(1, 1), (-1, -1)], [(1, -1), (-1, 1)])
    features = []
    for corners, size in zip(corners_of_class, _class_sizes(n_samples, 2)):
        centers = np.array([corners[i % 2] for i in range(size)], dtype=np.float64)
        features.append(centers + noise * rng.standard_normal(centers.shape))
    return _classification_splits("xor", features, val_fraction, rng)


def blobs(n_samples: int = 600, n_features: int = 2, centers=3, cluster_std: float = 1.0,
          center_box: tuple = (-10.0, 10.0), val_fraction: float = 0.25, seed: int = 0) -> Splits:
    """Isotropic Gaussian clusters, one class each (scikit-learn's make_blobs).

    `centers` is a number k of clusters, whose centers are drawn uniformly from the box
    `center_box` in each of the `n_features` coordinates, or an array of shape (k, n_features)
    giving them. A point of class k is center_k + cluster_std * eps, eps ~ N(0, I).
    """
    if not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"blobs: n_features must be a positive integer, got {n_features!r}")
    rng = np.random.default_rng(seed)
    if isinstance(centers, (int, np.integer)):
        centers = rng.uniform(center_box[0], center_box[1], size=(centers, n_features))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[0] < 1:
        raise ValueError(
            f"blobs: centers must be a count or an array of shape (k, n_features), got shape {centers.shape}"
        )
    if centers.shape[1] != n_features:
        raise ValueError(f"blobs: centers have {centers.shape[1]} features, n_features is {n_features}")
    _check_common("blobs", n_samples, len(centers), val_fraction, cluster_std=cluster_std)
    features = [
        center + cluster_std * rng.standard_normal((size, n_features))
        for center, size in zip(centers, _class_sizes(n_samples, len(centers)))
    ]
    return _classification_splits("blobs", features, val_fraction, rng)


def sine(n_samples: int = 200, noise: float = 0.1, x_range: tuple = (-np.pi, np.pi), val_fraction: float = 0.25,
         seed: int = 0) -> Splits:
    """1-D regression: x ~ U(x_range), y = sin(x) + noise * eps, eps ~ N(0, 1). X is (n, 1)."""
    _check_common("sine", n_samples, 1, val_fraction, noise=noise)
    low, high = x_range
    if not low < high:
        raise ValueError(f"sine: x_range must be (low, high) with low < high, got {x_range!r}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n_samples, 1))
    y = np.sin(x) + noise * rng.standard_normal(x.shape)
    return _regression_splits("sine", x, y, val_fraction, rng)


def teacher_student(n_train: int = 100, n_val: int = 2000, n_features: int = 20, teacher_hidden: int | None = None,
                    noise: float = 0.5, seed: int = 0) -> Splits:
    """Regression on the outputs of a fixed random "teacher", for studying over- and
    underfitting and double descent (vary n_train against n_features, e.g. 40 vs 100).

    Inputs x ~ N(0, I) in `n_features` dimensions. The teacher f is
    - linear (teacher_hidden=None): f(x) = w . x with w ~ N(0, I / n_features), so Var f(x) ~ 1;
    - a 2-layer tanh net (teacher_hidden=h): f(x) = v . tanh(W x) with W ~ N(0, 1 / n_features)
      of shape (h, n_features) and v ~ N(0, 1 / h).
    Training targets are f(x) + noise * eps, eps ~ N(0, 1). Validation targets are f(x) itself,
    without noise, so validation MSE measures how far the student is from the teacher (the
    expected error on fresh noisy targets is that plus noise**2); make n_val large so this
    estimate is precise.
    """
    for what, value, minimum in (("n_train", n_train, 1), ("n_val", n_val, 0), ("n_features", n_features, 1)):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"teacher_student: {what} must be an integer >= {minimum}, got {value!r}")
    if teacher_hidden is not None and (not isinstance(teacher_hidden, (int, np.integer)) or teacher_hidden < 1):
        raise ValueError(
            f"teacher_student: teacher_hidden must be None (linear) or a positive width, got {teacher_hidden!r}"
        )
    if not noise >= 0:
        raise ValueError(f"teacher_student: noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    if teacher_hidden is None:
        weights = rng.standard_normal(n_features) / np.sqrt(n_features)

        def teacher(x):
            return x @ weights
    else:
        hidden_weights = rng.standard_normal((teacher_hidden, n_features)) / np.sqrt(n_features)
        output_weights = rng.standard_normal(teacher_hidden) / np.sqrt(teacher_hidden)

        def teacher(x):
            return np.tanh(x @ hidden_weights.T) @ output_weights

    X_train = rng.standard_normal((n_train, n_features))
    y_train = teacher(X_train) + noise * rng.standard_normal(n_train)
    X_val = rng.standard_normal((n_val, n_features))
    y_val = teacher(X_val)
    return Splits(
        X_train.astype(np.float32), y_train.reshape(-1, 1).astype(np.float32),
        X_val.astype(np.float32), y_val.reshape(-1, 1).astype(np.float32),
        num_classes=None, name="teacher_student",
    )
