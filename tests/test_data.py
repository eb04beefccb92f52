"""Datasets, DataLoader (every sample once per epoch, seeded orders) and the toy datasets."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import data
from minigrad.tensor import Tensor


def indexed_dataset(n):
    """Sample i is (features [i, -i] as float32, label i as int32), so a batch names its samples."""
    features = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    return data.TensorDataset(features, np.arange(n, dtype=np.int32))


def epoch_indices(loader):
    """The sample indices each batch of one epoch holds, as a list of arrays."""
    return [np.asarray(labels.data if isinstance(labels, Tensor) else labels) for _, labels in loader]


# ----------------------------------------------------------------------------------------------
# TensorDataset
# ----------------------------------------------------------------------------------------------


def test_tensor_dataset_items_and_length():
    X, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    dataset = data.TensorDataset(Tensor(X), y)
    assert len(dataset) == 6
    features, label = dataset[4]
    np.testing.assert_array_equal(features, X[4])
    assert label == 4
    assert np.shares_memory(dataset.arrays[0], X)  # stored, not copied, as PyTorch does


def test_tensor_dataset_refuses_mismatched_first_dimensions_naming_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 2\), \(4,\)"):
        data.TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="first"):
        data.TensorDataset(np.zeros(3), np.float32(1.0))
    with pytest.raises(ValueError, match="at least one"):
        data.TensorDataset()


# ----------------------------------------------------------------------------------------------
# DataLoader: coverage of an epoch
# ----------------------------------------------------------------------------------------------


@given(
    n=st.integers(0, 40),
    batch_size=st.integers(1, 12),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_epoch_visits_every_sample_exactly_once(n, batch_size, drop_last, shuffle, seed):
    loader = data.DataLoader(indexed_dataset(n), batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    batches = epoch_indices(loader)
    assert len(batches) == len(loader)
    sizes = [len(batch) for batch in batches]
    if drop_last:
        # Only full batches; the n % batch_size samples left over are skipped, none repeated.
        assert len(loader) == n // batch_size and all(size == batch_size for size in sizes)
        visited = np.concatenate(batches) if batches else np.array([], dtype=int)
        assert len(np.unique(visited)) == len(visited) == n - n % batch_size
    else:
        # Full batches, then one smaller batch with the rest.
        assert len(loader) == -(-n // batch_size)
        assert all(size == batch_size for size in sizes[:-1])
        assert sorted(np.concatenate(batches).tolist() if batches else []) == list(range(n))
    if not shuffle and batches:
        np.testing.assert_array_equal(np.concatenate(batches), np.arange(sum(sizes)))


def test_features_travel_with_their_labels():
    loader = data.DataLoader(indexed_dataset(30), batch_size=7, shuffle=True, seed=3)
    for features, labels in loader:
        np.testing.assert_array_equal(features.data, np.stack([labels.data, -labels.data], axis=1))


# ----------------------------------------------------------------------------------------------
# DataLoader: orders
# ----------------------------------------------------------------------------------------------


def orders(loader, epochs):
    return [np.concatenate(epoch_indices(loader)) for _ in range(epochs)]


def test_same_seed_gives_the_same_sequence_of_orders():
    first = orders(data.DataLoader(indexed_dataset(50), 8, shuffle=True, seed=11), 3)
    second = orders(data.DataLoader(indexed_dataset(50), 8, shuffle=True, seed=11), 3)
    other_seed = orders(data.DataLoader(indexed_dataset(50), 8, shuffle=True, seed=12), 3)
    for a, b, c in zip(first, second, other_seed):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_successive_epochs_have_different_orders():
    epochs = orders(data.DataLoader(indexed_dataset(50), 8, shuffle=True, seed=0), 4)
    for i in range(len(epochs)):
        for j in range(i + 1, len(epochs)):
            assert not np.array_equal(epochs[i], epochs[j])


def test_an_explicit_generator_is_advanced_per_epoch():
    loader = data.DataLoader(indexed_dataset(20), 20, shuffle=True, generator=np.random.default_rng(5))
    reference = np.random.default_rng(5)
    for _ in range(3):
        np.testing.assert_array_equal(next(iter(loader))[1].data, reference.permutation(20))


def test_without_seed_shuffling_follows_minigrads_manual_seed():
    loader = data.DataLoader(indexed_dataset(50), 10, shuffle=True)
    mg.manual_seed(123)
    first = orders(loader, 2)
    mg.manual_seed(123)
    second = orders(loader, 2)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


def test_seed_and_generator_together_are_refused():
    with pytest.raises(ValueError, match="either seed or generator"):
        data.DataLoader(indexed_dataset(3), seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TypeError, match="np.random.Generator"):
        data.DataLoader(indexed_dataset(3), generator=7)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, None])
def test_bad_batch_size_is_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(indexed_dataset(3), batch_size=batch_size)


# ----------------------------------------------------------------------------------------------
# DataLoader: what a batch is
# ----------------------------------------------------------------------------------------------


def test_batches_are_tensors_without_grad_with_int64_labels():
    X64 = np.zeros((5, 3), dtype=np.float64)
    loader = data.DataLoader(data.TensorDataset(np.zeros((5, 3), np.float32), X64, np.arange(5, dtype=np.int32)), 2)
    features, features64, labels = next(iter(loader))
    assert all(isinstance(t, Tensor) and not t.requires_grad for t in (features, features64, labels))
    assert (features.dtype, features64.dtype, labels.dtype) == (np.float32, np.float64, np.int64)
    assert features.shape == (2, 3) and labels.shape == (2,)


def test_as_tensor_false_gives_the_stored_arrays():
    loader = data.DataLoader(indexed_dataset(5), 2, as_tensor=False)
    features, labels = next(iter(loader))
    assert type(features) is np.ndarray and type(labels) is np.ndarray
    assert (features.dtype, labels.dtype) == (np.float32, np.int32)


def test_batches_are_copies_not_views_of_the_dataset():
    dataset = indexed_dataset(4)
    features, _ = next(iter(data.DataLoader(dataset, 4, as_tensor=False)))
    features[...] = 99
    assert dataset.arrays[0].max() == 3


class SquaresDataset(data.Dataset):
    """A generic dataset: (array feature, Tensor feature, Python int label) per sample."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.array([index, index**2], dtype=np.float32), Tensor(np.float64(index)), index % 3


@given(n=st.integers(1, 25), batch_size=st.integers(1, 8), seed=st.integers(0, 1000))
def test_generic_dataset_batches_equal_the_stacked_items(n, batch_size, seed):
    loader = data.DataLoader(SquaresDataset(n), batch_size, shuffle=True, seed=seed)
    reference = np.random.default_rng(seed).permutation(n)
    for batch_number, (features, scalars, labels) in enumerate(loader):
        indices = reference[batch_number * batch_size:(batch_number + 1) * batch_size]
        np.testing.assert_array_equal(features.data, np.stack([indices, indices**2], axis=1))
        np.testing.assert_array_equal(scalars.data, indices.astype(np.float64))
        np.testing.assert_array_equal(labels.data, indices % 3)
        assert (features.dtype, scalars.dtype, labels.dtype) == (np.float32, np.float64, np.int64)


def test_single_value_samples_become_one_field_batches():
    class Values(data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, index):
            return float(index)

    batches = list(data.DataLoader(Values(), 2))
    assert [len(batch) for batch in batches] == [1, 1, 1]
    np.testing.assert_array_equal(batches[2][0].data, [4.0])


def test_samples_with_different_field_counts_are_refused():
    class Ragged(data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return (1.0, 2) if index != 2 else (1.0,)

    with pytest.raises(ValueError, match="sample 2 has 1 fields"):
        list(data.DataLoader(Ragged(), 3))


def test_base_dataset_says_what_to_define():
    with pytest.raises(NotImplementedError, match="__len__"):
        len(data.Dataset())


# ----------------------------------------------------------------------------------------------
# toy datasets
# ----------------------------------------------------------------------------------------------

CLASSIFICATION = {
    "spirals": lambda seed: data.spirals(n_samples=300, n_classes=3, seed=seed),
    "moons": lambda seed: data.moons(n_samples=301, seed=seed),
    "circles": lambda seed: data.circles(n_samples=200, seed=seed),
    "xor": lambda seed: data.xor(n_samples=200, seed=seed),
    "blobs": lambda seed: data.blobs(n_samples=250, n_features=4, centers=5, seed=seed),
}
REGRESSION = {
    "sine": lambda seed: data.sine(n_samples=100, seed=seed),
    "teacher_student": lambda seed: data.teacher_student(n_train=40, n_val=500, n_features=100, seed=seed),
    "teacher_student_tanh": lambda seed: data.teacher_student(n_train=30, n_val=200, n_features=5,
                                                              teacher_hidden=16, seed=seed),
}
ALL = {**CLASSIFICATION, **REGRESSION}


@pytest.mark.parametrize("make", CLASSIFICATION.values(), ids=CLASSIFICATION.keys())
def test_classification_shapes_dtypes_and_balance(make):
    splits = make(0)
    n_features = splits.X_train.shape[1]
    for X, y in ((splits.X_train, splits.y_train), (splits.X_val, splits.y_val)):
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert X.ndim == 2 and X.shape[1] == n_features and y.shape == (len(X),)
        assert np.all(np.isfinite(X))
    counts = np.bincount(np.concatenate([splits.y_train, splits.y_val]), minlength=splits.num_classes)
    assert len(counts) == splits.num_classes and counts.max() - counts.min() <= 1
    # Split per class, so each split is balanced too (to rounding).
    for y in (splits.y_train, splits.y_val):
        split_counts = np.bincount(y, minlength=splits.num_classes)
        assert split_counts.max() - split_counts.min() <= 2


@pytest.mark.parametrize("make", REGRESSION.values(), ids=REGRESSION.keys())
def test_regression_shapes_and_dtypes(make):
    splits = make(0)
    assert splits.num_classes is None
    for X, y in ((splits.X_train, splits.y_train), (splits.X_val, splits.y_val)):
        assert X.dtype == np.float32 and y.dtype == np.float32
        assert X.ndim == 2 and y.shape == (len(X), 1)


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_deterministic_per_seed_and_independent_of_minigrads_seed(make):
    mg.manual_seed(1)
    first = make(7)
    mg.manual_seed(2)
    again = make(7)
    other = make(8)
    for field in ("X_train", "y_train", "X_val", "y_val"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.X_train, other.X_train)


@pytest.mark.parametrize("make", ALL.values(), ids=ALL.keys())
def test_splits_are_disjoint_and_sized_as_asked(make):
    splits = make(0)
    train_rows = {row.tobytes() for row in splits.X_train}
    assert not any(row.tobytes() in train_rows for row in splits.X_val)
    if splits.name != "teacher_student":
        n = len(splits.X_train) + len(splits.X_val)
        assert abs(len(splits.X_val) - 0.25 * n) <= (splits.num_classes or 1)


def test_splits_is_frozen_and_wraps_tensor_datasets():
    splits = data.moons(n_samples=40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.X_train = None
    assert isinstance(splits.train, data.TensorDataset) and len(splits.train) == 30 and len(splits.val) == 10
    assert "moons" in repr(splits) and "(30, 2)" in repr(splits)


def least_squares_accuracy(splits):
    """Training accuracy of the best linear classifier in the least-squares sense: fit
    [X, 1] W to one-hot labels, predict argmax."""
    X = np.column_stack([splits.X_train, np.ones(len(splits.X_train))]).astype(np.float64)
    targets = np.eye(splits.num_classes)[splits.y_train]
    W, *_ = np.linalg.lstsq(X, targets, rcond=None)
    return np.mean(np.argmax(X @ W, axis=1) == splits.y_train)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_spirals_are_not_linearly_separable(n_classes):
    for seed in range(3):
        assert least_squares_accuracy(data.spirals(n_classes=n_classes, seed=seed)) < 0.8


def test_well_separated_blobs_are_linearly_separable():
    centers = [[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0]]
    assert least_squares_accuracy(data.blobs(n_samples=300, centers=centers, cluster_std=1.0)) >= 0.99


def test_xor_and_circles_defeat_a_linear_classifier():
    assert least_squares_accuracy(data.xor()) < 0.7
    assert least_squares_accuracy(data.circles()) < 0.7


def test_sine_targets_are_sine_plus_noise_of_the_given_size():
    splits = data.sine(n_samples=2000, noise=0.1, x_range=(-2.0, 3.0))
    X, y = np.concatenate([splits.X_train, splits.X_val]), np.concatenate([splits.y_train, splits.y_val])
    assert X.min() >= -2.0 and X.max() <= 3.0
    residual = y - np.sin(X)
    assert abs(residual.std() - 0.1) < 0.01 and abs(residual.mean()) < 0.01


def test_linear_teacher_validation_targets_are_noise_free():
    # The val targets lie exactly in the span of the inputs (up to float32 rounding); the
    # training targets carry noise of std `noise`, which a least-squares fit cannot explain.
    splits = data.teacher_student(n_train=2000, n_val=2000, n_features=10, noise=0.5, seed=3)

    def residual_std(X, y):
        X = X.astype(np.float64)
        coefficients, *_ = np.linalg.lstsq(X, y, rcond=None)
        return (y - X @ coefficients).std()

    assert residual_std(splits.X_val, splits.y_val) < 1e-5
    assert abs(residual_std(splits.X_train, splits.y_train) - 0.5) < 0.03


@pytest.mark.parametrize("teacher_hidden", [None, 8])
def test_noise_changes_only_the_training_targets(teacher_hidden):
    clean = data.teacher_student(n_train=40, n_val=100, n_features=100, teacher_hidden=teacher_hidden, noise=0.0)
    noisy = data.teacher_student(n_train=40, n_val=100, n_features=100, teacher_hidden=teacher_hidden, noise=1.0)
    np.testing.assert_array_equal(clean.X_train, noisy.X_train)
    np.testing.assert_array_equal(clean.y_val, noisy.y_val)
    assert 0.5 < np.std(noisy.y_train - clean.y_train) < 1.5
    assert np.std(clean.y_val) > 0.1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: data.spirals(n_samples=3, n_classes=2), "n_samples"),
        (lambda: data.moons(noise=-1), "noise"),
        (lambda: data.xor(val_fraction=1.0), "val_fraction"),
        (lambda: data.circles(factor=1.5), "factor"),
        (lambda: data.blobs(centers=np.zeros((3, 2)), n_features=5), "n_features"),
        (lambda: data.blobs(cluster_std=-1.0), "cluster_std"),
        (lambda: data.blobs(n_features=0), "n_features"),
        (lambda: data.sine(x_range=(1, -1)), "x_range"),
        (lambda: data.teacher_student(n_train=0), "n_train"),
        (lambda: data.teacher_student(teacher_hidden=0), "teacher_hidden"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
