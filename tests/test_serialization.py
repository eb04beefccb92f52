"""save / load: exact round trips, atomic writes, and refusal of anything that is not ours."""

import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad.serialization as serialization
from minigrad.serialization import CheckpointError, atomic_write, load, save
from minigrad.tensor import Tensor

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_, np.complex64, ">f8"]


# ----------------------------------------------------------------------------------------------
# exact equality: same types, same key order, same dtypes, same bits
# ----------------------------------------------------------------------------------------------


def assert_identical(expected, actual, where="obj"):
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(actual.keys()) == list(expected.keys()), f"{where}: keys differ"
        assert [type(k) for k in actual] == [type(k) for k in expected], f"{where}: key types differ"
        for key in expected:
            assert_identical(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: lengths differ"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_identical(e, a, f"{where}[{i}]")
    elif isinstance(expected, Tensor):
        assert actual.requires_grad == expected.requires_grad, f"{where}: requires_grad differs"
        assert_identical(expected.data, actual.data, f"{where}.data")
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype and actual.dtype.str == expected.dtype.str, f"{where}: dtype"
        assert actual.shape == expected.shape, f"{where}: shape"
        assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes(), f"{where}: bits"
    elif isinstance(expected, float):
        if math.isnan(expected):
            assert math.isnan(actual), f"{where}: {actual} is not NaN"
        else:
            assert actual == expected and math.copysign(1, actual) == math.copysign(1, expected), f"{where}: {actual}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def round_trip(obj, directory):
    path = os.path.join(directory, "checkpoint.npz")
    save(obj, path)
    return load(path)


# ----------------------------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------------------------

arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
tensors = st.builds(
    lambda array, requires_grad: Tensor(array, requires_grad=requires_grad and array.dtype.kind == "f"),
    arrays,
    st.booleans(),
)
numpy_scalars = arrays.filter(lambda a: a.ndim == 0).map(lambda a: a[()])
python_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
leaves = python_scalars | arrays | tensors | numpy_scalars
keys = st.text(max_size=10) | st.integers(-3, 2**70)


def containers(children):
    return (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(keys, children, max_size=4).map(OrderedDict)
    )


trees = st.recursive(leaves, containers, max_leaves=12)


@given(trees)
def test_nested_structures_round_trip_exactly(obj):
    with tempfile.TemporaryDirectory() as directory:
        assert_identical(obj, round_trip(obj, directory))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_is_kept_for_tensors_arrays_and_scalars(dtype, tmp_path):
    array = (np.arange(6) % 3).astype(dtype).reshape(2, 3)
    obj = {"array": array, "tensor": Tensor(array), "scalar": array[1, 2], "fortran": np.asfortranarray(array)}
    assert_identical(obj, round_trip(obj, tmp_path))


def test_model_and_optimizer_state_dicts_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    model_state = OrderedDict(
        [("fc1.weight", Tensor(rng.standard_normal((4, 3)).astype(np.float32))),
         ("fc1.bias", Tensor(np.zeros(4, np.float32))),
         ("bn.num_batches_tracked", Tensor(np.array(7, dtype=np.int64)))]
    )
    optimizer_state = {
        "state": {
            0: {"step": 3, "exp_avg": rng.standard_normal((4, 3)), "exp_avg_sq": rng.random((4, 3))},
            1: {"step": 3, "exp_avg": np.zeros(4), "exp_avg_sq": np.zeros(4)},
        },
        "param_groups": [
            {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1], "maximize": False, "foreach": None,
             "name": "all"},
        ],
    }
    checkpoint = {"model": model_state, "optimizer": optimizer_state, "epoch": 12}
    assert_identical(checkpoint, round_trip(checkpoint, tmp_path))


def test_tensors_come_back_as_new_leaves_keeping_requires_grad(tmp_path):
    weight = Tensor(np.ones(3), requires_grad=True)
    loaded = round_trip({"w": weight * 2}, tmp_path)["w"]
    assert loaded.is_leaf and loaded.requires_grad and loaded.grad is None
    np.testing.assert_array_equal(loaded.data, 2 * np.ones(3))


def test_keys_that_collide_after_sanitizing_get_their_own_entries(tmp_path):
    obj = {"a.b": np.array([1]), "a": {"b": np.array([2])}, "a/b": np.array([3]), "": np.array([4]),
           serialization.STRUCTURE_ENTRY: np.array([5])}
    assert_identical(obj, round_trip(obj, tmp_path))


def test_the_file_is_a_plain_npz_with_entries_named_by_key_path(tmp_path):
    path = tmp_path / "model.npz"
    save({"layer": {"weight": Tensor(np.eye(2))}, "step": 5}, path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted([serialization.STRUCTURE_ENTRY, "layer.weight"])
        np.testing.assert_array_equal(archive["layer.weight"], np.eye(2))
        structure = json.loads(archive[serialization.STRUCTURE_ENTRY].tobytes())
    assert structure["version"] == serialization.FORMAT_VERSION


# ----------------------------------------------------------------------------------------------
# what save refuses
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, where, what",
    [
        ({"model": {"layer": object()}}, "obj['model']['layer']", "builtins.object"),
        ({"a": [1, {2, 3}]}, "obj['a'][1]", "builtins.set"),
        ({"a": np.array([1, None], dtype=object)}, "obj['a']", "dtype object"),
        ({"a": {1.5: 2}}, "obj['a']", "key 1.5 of type float"),
        ({"a": {True: 2}}, "obj['a']", "key True of type bool"),
        ({"a": np.ma.masked_array([1, 2])}, "obj['a']", "MaskedArray"),
    ],
)
def test_unsupported_objects_are_refused_naming_where_and_what(obj, where, what, tmp_path):
    with pytest.raises(TypeError) as error:
        save(obj, tmp_path / "c.npz")
    assert where in str(error.value) and what in str(error.value)
    assert os.listdir(tmp_path) == []


def test_a_structure_that_contains_itself_is_refused(tmp_path):
    loop = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"obj\[1\] contains itself"):
        save(loop, tmp_path / "c.npz")


# ----------------------------------------------------------------------------------------------
# atomicity: a failed save leaves the previous file bit for bit, and no temporary file
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def previous_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save({"weights": np.arange(10.0), "epoch": 1}, path)
    return path, path.read_bytes()


def assert_untouched(previous_checkpoint):
    path, old_bytes = previous_checkpoint
    assert path.read_bytes() == old_bytes
    assert os.listdir(path.parent) == [path.name]


def test_failed_save_of_unsupported_object_keeps_previous_file(previous_checkpoint):
    with pytest.raises(TypeError):
        save({"weights": np.zeros(3), "bad": object()}, previous_checkpoint[0])
    assert_untouched(previous_checkpoint)


def test_error_in_the_middle_of_writing_keeps_previous_file(previous_checkpoint, monkeypatch):
    real_write_entry = serialization._write_entry
    calls = []

    def failing_write_entry(archive, name, array):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        real_write_entry(archive, name, array)

    monkeypatch.setattr(serialization, "_write_entry", failing_write_entry)
    with pytest.raises(OSError, match="injected"):
        save({"weights": np.zeros(1000), "more": np.ones(1000)}, previous_checkpoint[0])
    assert len(calls) == 2
    assert_untouched(previous_checkpoint)


def test_error_at_the_final_rename_keeps_previous_file(previous_checkpoint, monkeypatch):
    def failing_replace(source, target):
        raise OSError("rename failed (injected)")

    monkeypatch.setattr(serialization.os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        save({"weights": np.zeros(3)}, previous_checkpoint[0])
    assert_untouched(previous_checkpoint)


def test_atomic_write_text_mode_and_exception_in_the_block(tmp_path):
    path = tmp_path / "log.csv"
    with atomic_write(path, "w", encoding="utf-8", newline="") as file:
        file.write("step,loss\n1,0.5\n")
    assert path.read_text() == "step,loss\n1,0.5\n"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as file:
            file.write("half a line")
            raise KeyboardInterrupt
    assert path.read_text() == "step,loss\n1,0.5\n"
    assert os.listdir(tmp_path) == ["log.csv"]


def test_atomic_write_refuses_modes_that_do_not_replace_the_file(tmp_path):
    for mode in ("a", "r+", "rb", "ab"):
        with pytest.raises(ValueError, match="mode"):
            with atomic_write(tmp_path / "x", mode):
                pass
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_gives_the_permissions_a_plain_open_would(tmp_path):
    with open(tmp_path / "plain", "wb"):
        pass
    with atomic_write(tmp_path / "atomic") as file:
        file.write(b"x")
    assert os.stat(tmp_path / "atomic").st_mode == os.stat(tmp_path / "plain").st_mode


# ----------------------------------------------------------------------------------------------
# what load refuses
# ----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "nothing.npz")


def test_a_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "c.npz"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load(path)
    np.save(tmp_path / "plain.npy", np.arange(3))
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load(tmp_path / "plain.npy")


def test_an_npz_without_the_structure_entry(tmp_path):
    np.savez(tmp_path / "plain.npz", weights=np.arange(3))
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint"):
        load(tmp_path / "plain.npz")


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "c.npz"
    save({"weights": np.zeros(2)}, path)
    # Replace the array entry by a pickled object array under the same name.
    with zipfile.ZipFile(path) as archive:
        structure = archive.read(serialization.STRUCTURE_ENTRY + ".npy")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(serialization.STRUCTURE_ENTRY + ".npy", structure)
        with archive.open("weights.npy", "w") as member:
            np.lib.format.write_array(member, np.array([print, None], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="pickled"):
        load(path)


@pytest.mark.parametrize("keep_fraction", [0.0005, 0.3, 0.7, 0.999])
def test_truncated_file(keep_fraction, tmp_path):
    path = tmp_path / "c.npz"
    save({"weights": np.arange(500.0), "epoch": 3}, path)
    content = path.read_bytes()
    path.write_bytes(content[: max(1, int(len(content) * keep_fraction))])
    with pytest.raises(CheckpointError, match="not a minigrad checkpoint|damaged"):
        load(path)


def test_flipped_byte_in_array_data_is_caught(tmp_path):
    path = tmp_path / "c.npz"
    save({"weights": np.arange(500.0)}, path)
    content = bytearray(path.read_bytes())
    position = content.index(np.arange(500.0)[250:].tobytes())
    content[position] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(CheckpointError, match="damaged"):
        load(path)


def checkpoint_bytes(obj) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "c.npz")
        save(obj, path)
        with open(path, "rb") as file:
            return file.read()


FUZZ_OBJECT = {"w": np.arange(20.0), "state": {0: {"step": 3}}, "t": (1.5, "x")}
FUZZ_BYTES = checkpoint_bytes(FUZZ_OBJECT)


@given(position=st.integers(0, len(FUZZ_BYTES) - 1), mask=st.integers(1, 255))
def test_any_flipped_byte_loads_the_same_object_or_raises_checkpoint_error(position, mask):
    # A flip in a field nothing checks (a timestamp) is harmless; any other is caught. Never a
    # silently different result, never an unexplained exception.
    corrupted = bytearray(FUZZ_BYTES)
    corrupted[position] ^= mask
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "c.npz")
        with open(path, "wb") as file:
            file.write(corrupted)
        try:
            loaded = load(path)
        except CheckpointError:
            return
    assert_identical(FUZZ_OBJECT, loaded)


def test_structure_that_disagrees_with_the_arrays_is_caught(tmp_path):
    path = tmp_path / "c.npz"
    bad_structure = {"format": serialization.FORMAT_NAME, "version": 1,
                     "root": {"type": "ndarray", "array": "x", "dtype": "<f8", "shape": [3]}}
    structure = np.frombuffer(json.dumps(bad_structure).encode(), dtype=np.uint8)
    np.savez(path, **{serialization.STRUCTURE_ENTRY: structure, "x": np.zeros(4, np.float32)})
    with pytest.raises(CheckpointError, match="'x' has dtype <f4 and shape \\[4\\]"):
        load(path)


def test_newer_format_version_is_refused_with_advice(tmp_path):
    path = tmp_path / "c.npz"
    structure = {"format": serialization.FORMAT_NAME, "version": 99, "root": {"type": "none"}}
    np.savez(path, **{serialization.STRUCTURE_ENTRY: np.frombuffer(json.dumps(structure).encode(), np.uint8)})
    with pytest.raises(CheckpointError, match="version 99.*upgrade"):
        load(path)


def test_saving_into_a_missing_directory_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*missing.* does not exist"):
        save({}, tmp_path / "missing" / "c.npz")
