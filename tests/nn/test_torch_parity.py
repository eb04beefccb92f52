"""Against PyTorch: the same weights and inputs in float64 give the same outputs and the same
gradients (inputs and parameters) to 1e-10. Weights are moved from minigrad to PyTorch through
state_dict, which also checks that both libraries name every parameter and buffer alike."""

import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn

torch = pytest.importorskip("torch")
TOLERANCE = dict(rtol=1e-10, atol=1e-10)
F64 = np.float64


def copy_weights(ours, theirs):
    """Load our state dict into the PyTorch module (strict: the names must agree)."""
    theirs.load_state_dict({name: torch.from_numpy(value.data.copy()) for name, value in ours.state_dict().items()})


def inputs_away_from_zero(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def assert_same_step(ours, theirs, x, seed=0):
    """One forward and backward (with a random output gradient) in both libraries: outputs,
    input gradients and parameter gradients agree."""
    our_x = mg.tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    our_out, their_out = ours(our_x), theirs(their_x)
    np.testing.assert_allclose(our_out.data, their_out.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(seed + 100).standard_normal(our_out.shape)
    our_out.backward(mg.tensor(upstream))
    their_out.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(our_x.grad, their_x.grad.numpy(), **TOLERANCE)
    their_parameters = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        np.testing.assert_allclose(param.grad, their_parameters[name].grad.numpy(), **TOLERANCE, err_msg=name)


def paired(ours, theirs):
    copy_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("make_pair, shape", [
    (lambda: (nn.Linear(4, 3, dtype=F64), torch.nn.Linear(4, 3, dtype=torch.float64)), (5, 4)),
    (lambda: (nn.Linear(4, 3, bias=False, dtype=F64), torch.nn.Linear(4, 3, bias=False, dtype=torch.float64)), (2, 5, 4)),
    (lambda: (nn.ReLU(), torch.nn.ReLU()), (4, 5)),
    (lambda: (nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)), (4, 5)),
    (lambda: (nn.PReLU(dtype=F64), torch.nn.PReLU(dtype=torch.float64)), (4, 5)),
    (lambda: (nn.PReLU(3, init=0.1, dtype=F64), torch.nn.PReLU(3, init=0.1, dtype=torch.float64)), (4, 3, 2)),
    (lambda: (nn.ELU(0.7), torch.nn.ELU(0.7)), (4, 5)),
    (lambda: (nn.GELU(), torch.nn.GELU()), (4, 5)),
    (lambda: (nn.GELU("tanh"), torch.nn.GELU("tanh")), (4, 5)),
    (lambda: (nn.Tanh(), torch.nn.Tanh()), (4, 5)),
    (lambda: (nn.Sigmoid(), torch.nn.Sigmoid()), (4, 5)),
    (lambda: (nn.Softplus(), torch.nn.Softplus()), (4, 5)),
    (lambda: (nn.Softplus(2.0, 1.0), torch.nn.Softplus(2.0, 1.0)), (4, 5)),
    (lambda: (nn.Softmax(1), torch.nn.Softmax(1)), (4, 5)),
    (lambda: (nn.LogSoftmax(1), torch.nn.LogSoftmax(1)), (4, 5)),
    (lambda: (nn.Flatten(), torch.nn.Flatten()), (2, 3, 4)),
    (lambda: (nn.LayerNorm(5, dtype=F64), torch.nn.LayerNorm(5, dtype=torch.float64)), (4, 5)),
    (lambda: (nn.LayerNorm((3, 4), eps=1e-3, dtype=F64), torch.nn.LayerNorm((3, 4), eps=1e-3, dtype=torch.float64)),
     (2, 3, 4)),
    (lambda: (nn.LayerNorm(5, bias=False, dtype=F64), torch.nn.LayerNorm(5, bias=False, dtype=torch.float64)), (4, 5)),
], ids=lambda value: "" if callable(value) else str(value))
def test_layer_matches_pytorch(make_pair, shape):
    ours, theirs = paired(*make_pair())
    if isinstance(ours, nn.LayerNorm):
        with mg.no_grad():  # non-trivial affine parameters, copied over again
            for param in ours.parameters():
                param.copy_(np.random.default_rng(5).standard_normal(param.shape))
        copy_weights(ours, theirs)
    assert_same_step(ours, theirs, inputs_away_from_zero(*shape))


@pytest.mark.parametrize("make_pair", [
    lambda: (nn.ReLU(), torch.nn.ReLU()),
    lambda: (nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
    lambda: (nn.PReLU(dtype=F64), torch.nn.PReLU(dtype=torch.float64)),
    lambda: (nn.ELU(0.7), torch.nn.ELU(0.7)),
    lambda: (nn.GELU(), torch.nn.GELU()),
], ids=["ReLU", "LeakyReLU", "PReLU", "ELU", "GELU"])
def test_gradient_at_zero_matches_pytorch(make_pair):
    """At a kink the derivative is a convention (ReLU: 0; LeakyReLU, PReLU: the slope; ELU:
    alpha); ported models should see the same numbers there too."""
    ours, theirs = paired(*make_pair())
    assert_same_step(ours, theirs, np.array([[-1.0, 0.0, 0.5], [0.0, 2.0, -0.0]]))


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
@pytest.mark.parametrize("options", [{}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
                                     {"track_running_stats": False}])
def test_batchnorm_matches_pytorch_through_training_steps_then_eval(shape, options):
    ours = nn.BatchNorm1d(3, dtype=F64, **options)
    theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64, **options)
    if ours.weight is not None:
        with mg.no_grad():
            ours.weight.copy_(np.array([0.5, 2.0, -1.0]))
            ours.bias.copy_(np.array([0.1, 0.0, -0.4]))
    copy_weights(ours, theirs)
    for step in range(4):
        batch = np.random.default_rng(step).standard_normal(shape) * (step + 1) + step
        ours.zero_grad()
        theirs.zero_grad()
        assert_same_step(ours, theirs, batch, seed=step)
        for name, buffer in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[name].data, buffer.numpy(), **TOLERANCE, err_msg=name)
    ours.eval()
    theirs.eval()
    ours.zero_grad()
    theirs.zero_grad()
    assert_same_step(ours, theirs, np.random.default_rng(9).standard_normal(shape), seed=9)


def test_embedding_matches_pytorch():
    for padding_idx in (None, 2):
        ours, theirs = paired(nn.Embedding(6, 3, padding_idx=padding_idx, dtype=F64),
                              torch.nn.Embedding(6, 3, padding_idx=padding_idx, dtype=torch.float64))
        indices = np.array([[0, 2, 5], [2, 5, 5]])
        our_out, their_out = ours(mg.tensor(indices)), theirs(torch.from_numpy(indices))
        np.testing.assert_allclose(our_out.data, their_out.detach().numpy(), **TOLERANCE)
        upstream = np.random.default_rng(0).standard_normal(our_out.shape)
        our_out.backward(mg.tensor(upstream))
        their_out.backward(torch.from_numpy(upstream))
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **TOLERANCE)


def test_a_small_network_matches_pytorch():
    def build(lib):
        nn_namespace, dtype = lib.nn, lib.float64
        return nn_namespace.Sequential(
            nn_namespace.Linear(4, 8, dtype=dtype), nn_namespace.BatchNorm1d(8, dtype=dtype), nn_namespace.GELU(),
            nn_namespace.Dropout(0.3), nn_namespace.Linear(8, 8, dtype=dtype), nn_namespace.LayerNorm(8, dtype=dtype),
            nn_namespace.PReLU(dtype=dtype), nn_namespace.Linear(8, 3, dtype=dtype),
        )

    ours, theirs = paired(build(mg), build(torch))
    ours.eval()
    theirs.eval()  # dropout masks differ between libraries; in eval mode both are the identity
    assert_same_step(ours, theirs, np.random.default_rng(0).standard_normal((6, 4)))


TARGETS = {
    "labels": np.array([0, 2, 1, 2, 1]),
    "ignored": np.array([0, -100, 1, 2, -100]),
    "ignore 1": np.array([0, 1, 1, 2, 0]),
    "probabilities": np.random.default_rng(7).dirichlet(np.ones(3), size=5),
    "binary": np.random.default_rng(8).uniform(size=(5, 3)),
    "regression": np.random.default_rng(9).standard_normal((5, 3)),
}
WEIGHT = np.array([0.3, 1.0, 2.5])


@pytest.mark.parametrize("name, options, target", [
    ("CrossEntropyLoss", {}, "labels"),
    ("CrossEntropyLoss", {"reduction": "sum"}, "labels"),
    ("CrossEntropyLoss", {"reduction": "none"}, "labels"),
    ("CrossEntropyLoss", {"weight": WEIGHT}, "labels"),
    ("CrossEntropyLoss", {"weight": WEIGHT}, "ignored"),
    ("CrossEntropyLoss", {"ignore_index": 1, "reduction": "none"}, "ignore 1"),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, "labels"),
    ("CrossEntropyLoss", {"label_smoothing": 0.2, "weight": WEIGHT}, "ignored"),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "reduction": "none"}, "ignored"),
    ("CrossEntropyLoss", {}, "probabilities"),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.1}, "probabilities"),
    ("NLLLoss", {}, "labels"),
    ("NLLLoss", {"weight": WEIGHT}, "ignored"),
    ("NLLLoss", {"weight": WEIGHT, "reduction": "sum"}, "labels"),
    ("BCEWithLogitsLoss", {}, "binary"),
    ("BCEWithLogitsLoss", {"weight": WEIGHT, "pos_weight": WEIGHT[::-1].copy()}, "binary"),
    ("BCEWithLogitsLoss", {"reduction": "none", "pos_weight": WEIGHT}, "binary"),
    ("MSELoss", {}, "regression"),
    ("MSELoss", {"reduction": "sum"}, "regression"),
])
def test_loss_matches_pytorch(name, options, target):
    our_options = {key: mg.tensor(value) if isinstance(value, np.ndarray) else value for key, value in options.items()}
    their_options = {key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value for key, value in options.items()}
    ours, theirs = getattr(nn, name)(**our_options), getattr(torch.nn, name)(**their_options)
    scores = np.random.default_rng(1).standard_normal((5, 3)) * 2
    if name == "NLLLoss":
        scores = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    our_x, their_x = mg.tensor(scores, requires_grad=True), torch.tensor(scores, requires_grad=True)
    our_loss = ours(our_x, mg.tensor(TARGETS[target]))
    their_loss = theirs(their_x, torch.from_numpy(TARGETS[target]))
    np.testing.assert_allclose(our_loss.data, their_loss.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(2).standard_normal(our_loss.shape)
    our_loss.backward(mg.tensor(upstream))
    their_loss.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(our_x.grad, their_x.grad.numpy(), **TOLERANCE)


def test_init_helpers_match_pytorch():
    for nonlinearity, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                                ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]:
        assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))
    for shape in [(5, 3), (8, 4, 3), (8, 4, 3, 2), (2, 1, 1, 1, 7)]:
        ours = nn.init._calculate_fan_in_and_fan_out(mg.zeros(*shape))
        assert ours == torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))


def test_a_pytorch_checkpoint_loads_as_arrays():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).double()
    theirs.train()
    theirs(torch.randn(6, 3, dtype=torch.float64))
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(ours.eval()(mg.tensor(x)).data, theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                               **TOLERANCE)
