"""model_checks: dead units over a whole dataset (equal to a brute-force pass, whatever the data
container and batch size) and the initialization audit (the multiplier n_in Var(W) E[f'^2]
against its definition, silent for the init that suits each activation, loud for the others)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics.adapters import adapt
from diagnostics.model_checks import (
    DeadUnits, activation_derivative_at, audit_init, dead_unit_findings, dead_units, recommended_init,
)
from minigrad import nn
from minigrad.data import DataLoader, TensorDataset


def relu_model(seed=0):
    mg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 2))
    with mg.no_grad():
        model[2].bias.sub_(mg.tensor(np.linspace(0.0, 3.0, 10, dtype=np.float32)))  # kill some units
    return model


def inputs(n=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3)).astype(np.float32)


def brute_force_pre_activations(model, x):
    """Per ReLU layer, every example's pre-activation, computed by hand in float64."""
    h = x.astype(np.float64)
    pre = {}
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            h = h @ layer.weight.data.T.astype(np.float64) + layer.bias.data
        elif isinstance(layer, nn.ReLU):
            pre[name] = h
            h = np.maximum(h, 0)
    return pre


# ---------------------------------------------------------------- dead units


@given(st.integers(1, 70), st.integers(0, 5))
def test_dead_units_equal_a_brute_force_pass(batch_size, seed):
    model, x = relu_model(seed), inputs(seed=seed)
    result = dead_units(model, x, batch_size=batch_size)
    expected = brute_force_pre_activations(model, x)
    assert list(result) == list(expected) == ["1", "3"]
    for name, pre in expected.items():
        units = result[name]
        np.testing.assert_array_equal(units.dead, ~(pre > 0).any(axis=0))
        np.testing.assert_allclose(units.max_preactivation, pre.max(axis=0), rtol=1e-5, atol=1e-6)
        assert units.samples == len(x)
        assert units.dead_fraction == pytest.approx(np.mean(~(pre > 0).any(axis=0)))


def test_every_data_container_gives_the_same_answer():
    model, x = relu_model(), inputs()
    y = np.zeros(len(x), dtype=np.int64)
    reference = dead_units(model, x)
    for data in (mg.tensor(x), (x, y), [mg.tensor(x), mg.tensor(y)], TensorDataset(x, y),
                 DataLoader(TensorDataset(x, y), batch_size=7, shuffle=True, seed=1)):
        result = dead_units(model, data, batch_size=5)
        for name in reference:
            np.testing.assert_array_equal(result[name].dead, reference[name].dead)
            # Other batch sizes, other BLAS blockings: the same up to the last bit of float32.
            np.testing.assert_allclose(result[name].max_preactivation, reference[name].max_preactivation, rtol=1e-6)


def test_a_unit_active_on_a_single_example_is_alive():
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU())
    with mg.no_grad():
        model[0].weight.copy_(mg.tensor(np.array([[1.0], [-1.0]], dtype=np.float32)))
        model[0].bias.fill_(-99.0)
    x = np.array([[1.0]] * 999 + [[100.0]], dtype=np.float32)  # only the last example reaches unit 0
    units = dead_units(model, x, batch_size=100)["1"]
    np.testing.assert_array_equal(units.dead, [False, True])
    np.testing.assert_allclose(units.max_preactivation, [1.0, -100.0])


def test_dead_units_run_in_eval_mode_without_a_graph_and_restore_the_modes():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.5), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 2))
    model[3].eval()  # a mixed setting, which must survive
    seen = []
    model[2].register_forward_hook(lambda module, args, output: seen.append((module.training, output.requires_grad)))
    first, second = dead_units(model, inputs()), dead_units(model, inputs())
    np.testing.assert_array_equal(first["2"].dead, second["2"].dead)  # no dropout: deterministic
    assert set(seen) == {(False, False)}
    assert [module.training for module in model.modules()] == [True, True, True, True, False, True]
    assert all(p.grad is None for p in model.parameters())
    for module in model.modules():
        assert len(module._forward_hooks) == (1 if module is model[2] else 0)


def test_modes_and_hooks_are_restored_when_the_forward_fails():
    model = relu_model()
    with pytest.raises(Exception):
        dead_units(model, np.zeros((4, 5), dtype=np.float32))  # 5 features for a 3-input layer
    assert model.training and all(not module._forward_hooks for module in model.modules())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        dead_units(relu_model(), inputs(), batch_size=0)
    with pytest.raises(ValueError, match="no examples"):
        dead_units(relu_model(), np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="first \\(example\\) dimension"):
        dead_units(relu_model(), np.float32(1.0))


def test_an_activation_module_shared_by_layers_of_different_widths_is_refused():
    class SharedActivation(nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second, self.act = nn.Linear(3, 8), nn.Linear(8, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.second(self.act(self.first(x))))

    model = SharedActivation()
    with pytest.raises(ValueError, match="module 'act' is applied to layers of different widths \\(8 and 4"):
        dead_units(model, inputs())
    assert not model.act._forward_hooks


def test_a_model_without_relus_has_no_dead_units():
    assert dead_units(nn.Sequential(nn.Linear(3, 4), nn.Tanh()), inputs()) == {}


def dead(kind, fraction, units=10):
    mask = np.arange(units) < round(fraction * units)
    return DeadUnits(kind, mask, np.where(mask, -2.0, 1.0), samples=100)


def test_dead_unit_findings_use_the_whole_dataset_definition():
    findings = dead_unit_findings({"1": dead("relu", 0.8), "3": dead("relu", 0.5), "5": dead("leaky_relu", 0.9)})
    assert [(f.kind, f.layer, f.severity) for f in findings] == [
        ("dead_relu", "1", "critical"), ("dead_relu", "5", "warning")]
    first = findings[0]
    assert "whole-dataset pass" in first.message and first.evidence["definition"] == "whole-dataset pass"
    assert (first.evidence["dead_units"], first.evidence["units"], first.evidence["samples"]) == (8, 10, 100)
    assert first.evidence["median_max_preactivation_of_dead"] == -2.0
    assert first.step is None
    assert dead_unit_findings({"1": dead("relu", 0.3)}, dead_layer_fraction=0.2)[0].layer == "1"
    assert dead_unit_findings({}) == []


def test_dead_units_found_on_a_real_model_become_findings():
    result = dead_units(relu_model(), inputs())
    expected = [name for name, units in result.items() if units.dead_fraction > 0.5]
    assert [finding.layer for finding in dead_unit_findings(result)] == expected


# ---------------------------------------------------------------- the derivative table


@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.2), nn.PReLU(init=0.3), nn.ELU(0.7), nn.GELU(),
                                    nn.Softplus(beta=2.0), nn.Tanh(), nn.Sigmoid()],
                         ids=lambda module: type(module).__name__)
def test_activation_derivatives_match_autograd(module):
    z = np.linspace(-4, 4, 41).reshape(1, -1) + 0.013  # avoids the kink at exactly 0
    x = mg.tensor(z, requires_grad=True)
    module.double()(x).sum().backward()
    adapter = adapt(module)
    np.testing.assert_allclose(activation_derivative_at(adapter.kind(module), module, z, adapter), x.grad,
                               rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------- the initialization audit


def mlp(activation, init, depth=4, width=128, n_in=64, seed=0):
    mg.manual_seed(seed)
    layers, fan_in = [], n_in
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        init(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
        fan_in = width
    output = nn.Linear(width, 10)
    nn.init.kaiming_normal_(output.weight, nonlinearity="linear")  # LeCun: 1 / n_in
    nn.init.zeros_(output.bias)
    return nn.Sequential(*layers, output)


def standard_inputs(n_in=64, n=512, scale=1.0):
    return (scale * np.random.default_rng(1).standard_normal((n, n_in))).astype(np.float32)


def he(weight):
    nn.init.kaiming_normal_(weight, nonlinearity="relu")


def leaky_he(weight):
    nn.init.kaiming_normal_(weight, a=0.2, nonlinearity="leaky_relu")


def lecun(weight):
    nn.init.kaiming_normal_(weight, nonlinearity="linear")


@pytest.mark.parametrize("activation, init, scale", [
    (nn.ReLU, he, 1.0), (nn.GELU, he, 1.0), (nn.ELU, he, 1.0), (lambda: nn.LeakyReLU(0.2), leaky_he, 1.0),
    (nn.Tanh, nn.init.xavier_normal_, 0.5), (nn.Tanh, lecun, 0.5),
], ids=["relu-he", "gelu-he", "elu-he", "leaky-he", "tanh-xavier", "tanh-lecun"])
def test_the_init_that_suits_each_activation_passes_the_audit(activation, init, scale):
    assert audit_init(mlp(activation, init), standard_inputs(scale=scale)) == []


@pytest.mark.parametrize("std, effect", [(0.01, "shrinks"), (1.0, "grows")])
def test_too_small_or_too_large_weights_are_flagged_per_layer_and_for_the_network(std, effect):
    model = mlp(nn.ReLU, lambda weight: nn.init.normal_(weight, std=std))
    findings = audit_init(model, standard_inputs())
    per_layer = [f for f in findings if f.layer is not None]
    assert [f.layer for f in per_layer] == ["0", "2", "4", "6"]  # the output layer has LeCun init
    assert all(f.kind == "bad_init" and f.severity == "warning" and effect in f.message for f in per_layer)
    for finding in per_layer:
        assert finding.evidence["recommended_var_w"] == pytest.approx(2 / finding.evidence["n_in"])
        assert "He" in finding.evidence["recommended_init"] and finding.evidence["activation"] == "relu"
    network = [f for f in findings if f.layer is None]
    assert [(f.kind, f.severity) for f in network] == [("bad_init", "critical")]
    assert network[0].evidence["layers"] == ["0", "2", "4", "6", "8"]
    assert network[0].evidence["predicted"] == pytest.approx(math.prod(network[0].evidence["multipliers"]))


def test_the_evidence_is_the_multiplier_of_its_definition():
    model = mlp(nn.Tanh, lambda weight: nn.init.normal_(weight, std=1.0), depth=1)
    x = standard_inputs()
    finding = next(f for f in audit_init(model, x) if f.layer == "0")
    weight = model[0].weight.data.astype(np.float64)
    z = x.astype(np.float64) @ weight.T  # zero bias
    mean_square_derivative = np.mean((1 - np.tanh(z) ** 2) ** 2)
    evidence = finding.evidence
    assert evidence["n_in"] == 64 and evidence["var_w"] == pytest.approx(weight.var())
    assert evidence["mean_square_derivative"] == pytest.approx(mean_square_derivative, rel=1e-5)
    assert evidence["predicted"] == pytest.approx(64 * weight.var() * mean_square_derivative, rel=1e-5)
    assert evidence["measured"] == pytest.approx(np.mean(np.tanh(z) ** 2) / np.mean(x.astype(np.float64) ** 2),
                                                 rel=1e-5)
    assert evidence["recommended_var_w"] == pytest.approx(2 / (64 + 128))
    assert "Xavier" in evidence["recommended_init"]


@pytest.mark.parametrize("seed", range(3))
def test_for_relu_the_predicted_multiplier_is_what_the_layer_does(seed):
    """He et al.: E[relu(z)^2] = E[z^2 f'(z)^2] and E[z^2] = n_in Var(W) E[x^2], so predicted and
    measured agree up to the sampling noise of one weight matrix and one batch."""
    model = mlp(nn.ReLU, lambda weight: nn.init.normal_(weight, std=0.03), depth=3, width=256, seed=seed)
    for finding in audit_init(model, standard_inputs()):
        if finding.layer in ("0", "2", "4"):
            assert finding.evidence["measured"] == pytest.approx(finding.evidence["predicted"], rel=0.2)


def balanced_signs(shape, magnitude):
    """Entries +-magnitude, exactly half of each sign: mean 0, variance exactly magnitude^2."""
    signs = np.resize([1.0, -1.0], int(np.prod(shape)))
    return (magnitude * np.random.default_rng(0).permutation(signs)).reshape(shape).astype(np.float32)


def linear_stack(multipliers, width=16):
    """Linear layers with no activation, layer i of variance multiplier multipliers[i]."""
    layers = []
    for multiplier in multipliers:
        linear = nn.Linear(width, width, bias=False)
        with mg.no_grad():
            linear.weight.copy_(mg.tensor(balanced_signs((width, width), math.sqrt(multiplier / width))))
        layers.append(linear)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("multipliers, flagged_layers, network", [
    ([1.0, 1.0, 1.0], [], False),
    ([1.9, 0.51, 1.0], [], False),               # inside [0.5, 2]
    ([0.4, 0.4], ["0", "1"], False),             # each shrinks, together 0.16: inside [0.1, 10]
    ([0.4, 0.4, 0.4], ["0", "1", "2"], True),    # together 0.064
    ([1.8, 1.8, 1.8, 1.8], [], True),            # each fine, together 10.5: the network grows
    ([3.0, 1.0, 1.0], ["0"], False),
])
def test_layer_and_network_limits(multipliers, flagged_layers, network):
    findings = audit_init(linear_stack(multipliers), standard_inputs(n_in=16))
    assert [f.layer for f in findings if f.layer is not None] == flagged_layers
    for finding in findings:
        if finding.layer is not None:
            index = int(finding.layer)
            assert finding.evidence["predicted"] == pytest.approx(multipliers[index], rel=1e-5)
            assert finding.evidence["activation"] is None and "LeCun" in finding.evidence["recommended_init"]
    assert any(f.layer is None for f in findings) == network


def test_an_activation_not_fed_by_the_linear_layer_is_not_its_activation():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU())
    nn.init.normal_(model[0].weight, std=1.0)
    finding = audit_init(model, standard_inputs())[0]
    assert finding.evidence["activation"] is None and finding.evidence["mean_square_derivative"] == 1.0


def test_embeddings_and_non_linear_modules_are_not_audited():
    mg.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.norm = nn.LayerNorm(8)

        def forward(self, indices):
            return self.norm(self.embed(indices))

    assert audit_init(Model(), np.arange(10)) == []


def test_sigmoid_is_flagged_even_with_xavier_and_told_why():
    findings = audit_init(mlp(nn.Sigmoid, nn.init.xavier_normal_, depth=2), standard_inputs(scale=0.5))
    layer = next(f for f in findings if f.layer == "0")
    assert layer.evidence["mean_square_derivative"] <= 1 / 16
    assert "prefer tanh or ReLU" in layer.evidence["recommended_init"]


def test_recommended_inits():
    assert recommended_init("relu", 100, 50)[1] == pytest.approx(2 / 100)
    assert recommended_init("leaky_relu", 100, 50, nn.LeakyReLU(0.5))[1] == pytest.approx(2 / (1.25 * 100))
    assert recommended_init("tanh", 100, 50)[1] == pytest.approx(2 / 150)
    assert recommended_init(None, 100, 50)[1] == pytest.approx(1 / 100)
    assert recommended_init("sigmoid", 100, 50)[0].startswith("Xavier")


def test_the_audit_restores_modes_and_removes_its_hooks():
    model = mlp(nn.ReLU, lambda weight: nn.init.normal_(weight, std=0.01), depth=2)
    audit_init(model, (standard_inputs(), np.zeros(512)))
    assert model.training and all(not module._forward_hooks for module in model.modules())
    assert all(p.grad is None for p in model.parameters())
