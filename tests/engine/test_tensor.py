"""Tensor basics: construction and factories, dtypes, attributes, memory sharing, operators,
comparisons and the repr."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.gradcheck import gradcheck


@pytest.fixture
def float64_default():
    """Switch the default dtype to float64 for one test, and back whatever happens."""
    previous = mg.get_default_dtype()
    mg.set_default_dtype(np.float64)
    yield
    mg.set_default_dtype(previous)


def leaf(values):
    return mg.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ---------------------------------------------------------------- construction and dtypes


def test_tensor_copies_its_data_and_takes_requires_grad_and_dtype():
    data = np.array([1.0, 2.0, 3.0])
    t = mg.tensor(data, requires_grad=True, dtype=np.float32)
    assert t.dtype == np.float32 and t.requires_grad and t.is_leaf and t.grad is None
    data[0] = 99.0
    np.testing.assert_array_equal(t.data, [1.0, 2.0, 3.0])
    assert isinstance(t.data, np.ndarray)


def test_python_floats_and_lists_default_to_float32():
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor([1, 2.5]).dtype == np.float32
    assert mg.get_default_dtype() == np.float32


def test_set_default_dtype_switches_new_floating_tensors(float64_default):
    assert mg.tensor([1.0, 2.0]).dtype == np.float64
    assert mg.zeros(2).dtype == np.float64
    assert mg.randn(2).dtype == np.float64
    assert mg.arange(0.0, 1.0, 0.5).dtype == np.float64
    assert mg.tensor([1, 2]).dtype == np.int64


def test_an_ndarray_keeps_its_dtype():
    for dtype in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_):
        assert mg.tensor(np.zeros(2, dtype=dtype)).dtype == dtype
        assert mg.Tensor(np.zeros(2, dtype=dtype)).dtype == dtype


def test_integers_give_int64_and_booleans_bool():
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor(3).dtype == np.int64
    assert mg.tensor([True, False]).dtype == np.bool_


def test_python_numbers_keep_a_float32_tensor_float32():
    t = mg.tensor([1.0, 2.0])
    for result in (t * 0.5, 0.5 * t, t + 1.5, 1.5 - t, t / 3.0, 3.0 / t, t**2, t**0.5, t * 2, 2 - t):
        assert result.dtype == np.float32
    assert (mg.arange(3) + 1).dtype == np.int64


# ---------------------------------------------------------------- factories


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: mg.zeros(2, 3), (2, 3)),
        (lambda: mg.zeros((2, 3)), (2, 3)),
        (lambda: mg.ones(4), (4,)),
        (lambda: mg.ones(()), ()),
        (lambda: mg.full((2, 2), 0.5), (2, 2)),
        (lambda: mg.randn(3, 2), (3, 2)),
        (lambda: mg.rand((5,)), (5,)),
        (lambda: mg.eye(3), (3, 3)),
        (lambda: mg.eye(2, 4), (2, 4)),
        (lambda: mg.linspace(0, 1, 5), (5,)),
        (lambda: mg.zeros_like(mg.ones(2, 3)), (2, 3)),
        (lambda: mg.ones_like(mg.ones(4)), (4,)),
    ],
)
def test_floating_factories_give_the_shape_and_the_default_dtype(make, shape):
    t = make()
    assert t.shape == shape and t.dtype == np.float32 and not t.requires_grad


def test_factory_values():
    np.testing.assert_array_equal(mg.zeros(2, 2).data, np.zeros((2, 2)))
    np.testing.assert_array_equal(mg.ones(3).data, np.ones(3))
    np.testing.assert_array_equal(mg.full((2,), 7.0).data, [7.0, 7.0])
    np.testing.assert_array_equal(mg.eye(2, 3).data, [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(mg.linspace(-1, 1, 5).data, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_array_equal(mg.arange(4).data, [0, 1, 2, 3])
    np.testing.assert_array_equal(mg.arange(2, 8, 3).data, [2, 5])
    np.testing.assert_allclose(mg.arange(0.0, 1.0, 0.25).data, [0, 0.25, 0.5, 0.75])


def test_factory_dtypes():
    assert mg.arange(4).dtype == np.int64
    assert mg.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert mg.full((2,), 1).dtype == np.int64
    assert mg.full((2,), True).dtype == np.bool_
    assert mg.zeros(2, dtype=np.float64).dtype == np.float64
    assert mg.zeros_like(mg.tensor([1, 2])).dtype == np.int64
    assert mg.ones_like(mg.zeros(2), dtype=np.float64).dtype == np.float64
    assert mg.randint(0, 5, (3,)).dtype == np.int64
    assert mg.rand(2, dtype=np.float64).dtype == np.float64


def test_factories_may_require_grad():
    for t in (mg.zeros(2, requires_grad=True), mg.ones(2, requires_grad=True), mg.randn(2, requires_grad=True),
              mg.full((2,), 0.5, requires_grad=True), mg.eye(2, requires_grad=True)):
        assert t.requires_grad and t.is_leaf


def test_random_factories_draw_from_the_right_range():
    mg.manual_seed(0)
    uniform = mg.rand(1000)
    assert uniform.data.min() >= 0 and uniform.data.max() < 1
    integers = mg.randint(3, 7, (1000,))
    assert set(np.unique(integers.data)) == {3, 4, 5, 6}
    assert set(np.unique(mg.randint(2, size=(100,)).data)) == {0, 1}
    normal = mg.randn(10_000, dtype=np.float64)
    # The mean of 10,000 standard normals has standard deviation 0.01: 5 sigma is 0.05.
    assert abs(normal.data.mean()) < 0.05 and abs(normal.data.std() - 1) < 0.05


def test_manual_seed_makes_random_draws_reproducible():
    mg.manual_seed(1234)
    first = (mg.randn(3, 2).data, mg.rand(4).data, mg.randint(0, 100, (5,)).data)
    mg.manual_seed(1234)
    second = (mg.randn(3, 2).data, mg.rand(4).data, mg.randint(0, 100, (5,)).data)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    mg.manual_seed(1235)
    assert not np.array_equal(mg.randn(3, 2).data, first[0])


# ---------------------------------------------------------------- attributes and memory


def test_attributes():
    t = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.float32
    assert t.requires_grad and t.is_leaf and t.grad_fn is None
    np.testing.assert_array_equal(t.T.data, t.data.T)
    assert t.T.grad_fn is not None and not t.T.is_leaf
    assert mg.tensor(2.5).item() == 2.5 and isinstance(mg.tensor(2.5).item(), float)
    assert mg.tensor([[7]]).item() == 7 and isinstance(mg.tensor([[7]]).item(), int)


def test_numpy_shares_memory():
    t = mg.tensor([1.0, 2.0])
    array = t.numpy()
    array[0] = 5.0
    assert t.data[0] == 5.0 and np.shares_memory(array, t.data)


def test_detach_shares_memory_and_has_no_history():
    x = leaf([1.0, 2.0])
    detached = (x * 2).detach()
    assert detached.grad_fn is None and not detached.requires_grad and detached.is_leaf
    plain = x.detach()
    assert np.shares_memory(plain.data, x.data)
    with mg.no_grad():
        plain.data[0] = 10.0
    assert x.data[0] == 10.0


def test_clone_has_its_own_memory_and_passes_gradients_back():
    x = leaf([1.0, 2.0])
    copy = x.clone()
    assert not np.shares_memory(copy.data, x.data) and copy.dtype == x.dtype
    assert copy.grad_fn is not None
    (copy * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_requires_grad_and_zero_grad():
    t = mg.tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad
    (t * 2).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 2.0])
    t.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])
    t.zero_grad()
    assert t.grad is None
    t.requires_grad_(False)
    assert not t.requires_grad


# ---------------------------------------------------------------- operators

a_values, b_values = np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([[0.5, 4.0], [-1.0, 2.0]])
BINARY = {
    "+": (lambda a, b: a + b, np.add),
    "-": (lambda a, b: a - b, np.subtract),
    "*": (lambda a, b: a * b, np.multiply),
    "/": (lambda a, b: a / b, np.divide),
    "@": (lambda a, b: a @ b, np.matmul),
}


@pytest.mark.parametrize("symbol", sorted(BINARY))
def test_binary_operators_match_numpy_for_tensors_scalars_and_arrays(symbol):
    operator, reference = BINARY[symbol]
    a, b = mg.tensor(a_values), mg.tensor(b_values)
    np.testing.assert_allclose(operator(a, b).data, reference(a_values, b_values))
    np.testing.assert_allclose(operator(a, b_values).data, reference(a_values, b_values))
    result = operator(a_values, b)  # NumPy hands the operator to the tensor (__array_ufunc__ = None)
    assert isinstance(result, mg.Tensor)
    np.testing.assert_allclose(result.data, reference(a_values, b_values))
    if symbol != "@":
        np.testing.assert_allclose(operator(a, 2.0).data, reference(a_values, 2.0))
        np.testing.assert_allclose(operator(2.0, b).data, reference(2.0, b_values))


def test_power_and_negation():
    t = mg.tensor(np.array([1.0, 2.0, 4.0]))
    np.testing.assert_allclose((t**2).data, [1.0, 4.0, 16.0])
    np.testing.assert_allclose((2**t).data, [2.0, 4.0, 16.0])
    np.testing.assert_allclose((t ** mg.tensor(np.array([0.5, 1.0, 0.5]))).data, [1.0, 2.0, 2.0])
    np.testing.assert_array_equal((-t).data, [-1.0, -2.0, -4.0])


@pytest.mark.parametrize(
    "name, function",
    [
        ("tensor op tensor", lambda a, b: (a + b) * (a - b) / (b * b + 1) + (a @ b.T) ** 2 / 10),
        ("number op tensor", lambda a, b: (2.0 - a) * (3.0 / (b * b + 1)) + 1.5 ** a + (-b)),
        ("array op tensor", lambda a, b: (a_values - a) * (b_values / (b * b + 1)) + a_values @ b),
    ],
)
def test_operator_gradients_match_finite_differences(name, function):
    """The right-hand variants keep the operand order: 2 - a has gradient -1, 3 / b has -3 / b^2."""
    assert gradcheck(function, (leaf(a_values), leaf(b_values)))


def test_comparisons_return_boolean_tensors_without_grad():
    x = leaf([1.0, 2.0, 3.0])
    expected = {
        "<": [True, False, False], "<=": [True, True, False], ">": [False, False, True],
        ">=": [False, True, True], "==": [False, True, False], "!=": [True, False, True],
    }
    results = {"<": x < 2, "<=": x <= 2, ">": x > 2, ">=": x >= 2, "==": x == 2, "!=": x != mg.tensor(2.0)}
    for symbol, result in results.items():
        assert isinstance(result, mg.Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        np.testing.assert_array_equal(result.data, expected[symbol])


# ---------------------------------------------------------------- repr


def test_repr_reads_like_pytorch():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr(mg.tensor([1.5, 2.25])) == "tensor([1.5000, 2.2500])"
    assert repr(mg.tensor(3.0)) == "tensor(3.)"
    assert repr(mg.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(mg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(mg.tensor([True, False])) == "tensor([ True, False])"


def test_repr_shows_the_dtype_when_it_is_not_the_default(float64_default):
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mg.tensor([1.0, 2.0], dtype=np.float32)) == "tensor([1., 2.], dtype=float32)"
    assert repr(mg.tensor([1, 2], dtype=np.int32)) == "tensor([1, 2], dtype=int32)"
    x = mg.tensor([1.0], dtype=np.float32, requires_grad=True)
    assert repr(x) == "tensor([1.], dtype=float32, requires_grad=True)"


def test_repr_matches_pytorch_for_the_same_values():
    torch = pytest.importorskip("torch")
    for values in ([1.0, 2.0], [1.5, -2.25], [[1.0, 2.5], [3.0, 4.0]], 3.0, [0.1234567, 2.0]):
        ours = repr(mg.tensor(values))
        theirs = repr(torch.tensor(values))
        assert ours == theirs
