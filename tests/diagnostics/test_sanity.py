"""Each sanity check fails on a setup built to violate it and passes on a correct one."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from diagnostics import sanity
from minigrad import nn, optim


@pytest.fixture
def spirals():
    return mg.data.spirals(n_samples=200, noise=0.1, seed=0)


def make_mlp(seed=0):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def adam(parameters):
    return optim.Adam(parameters, lr=1e-2)


def parameters_of(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


# ------------------------------------------------------------------------------------- data


def test_clean_data_passes(spirals):
    result = sanity.check_data(spirals.X_train, spirals.y_train, 2, spirals.X_val, spirals.y_val)
    assert result.passed, result
    assert result.numbers["nonfinite_inputs"] == 0 and result.numbers["duplicates_train_val"] == 0


@given(rows=st.lists(st.integers(0, 149), min_size=1, max_size=5, unique=True),
       bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_nonfinite_inputs_fail_and_are_counted(rows, bad):
    data = mg.data.spirals(n_samples=200, noise=0.1, seed=0)
    X = data.X_train.copy()
    X[rows, 0] = bad
    result = sanity.check_data(X, data.y_train, 2)
    assert not result.passed
    assert result.numbers["nonfinite_inputs"] == len(rows)
    assert "NaN/Inf" in result.verdict and result.recommendation


@given(label=st.sampled_from([-1, 2, 7]))
def test_out_of_range_labels_fail(label):
    data = mg.data.spirals(n_samples=200, noise=0.1, seed=0)
    y = data.y_train.copy()
    y[3] = label
    result = sanity.check_data(data.X_train, y, 2)
    assert not result.passed and result.numbers["labels_out_of_range"] == 1


def test_class_imbalance_above_ten_to_one_fails():
    X = np.zeros((110, 2), dtype=np.float32) + np.arange(110)[:, None]
    y = np.array([0] * 100 + [1] * 10)
    assert sanity.check_data(X, y, 2).passed  # exactly 10:1 is allowed
    y = np.array([0] * 101 + [1] * 9)
    result = sanity.check_data(X, y, 2)
    assert not result.passed and result.numbers["largest_over_smallest_class"] > 10


def test_samples_shared_by_train_and_validation_fail(spirals):
    X_val = spirals.X_val.copy()
    X_val[:4] = spirals.X_train[10:14]
    result = sanity.check_data(spirals.X_train, spirals.y_train, 2, X_val, spirals.y_val)
    assert not result.passed and result.numbers["duplicates_train_val"] == 4


# ---------------------------------------------------------------- forward / backward checks


def test_initial_loss_near_ln_c_passes(spirals):
    result = sanity.check_initial_loss(make_mlp(), nn.CrossEntropyLoss(), spirals.X_train, spirals.y_train)
    assert result.passed, result
    assert abs(result.numbers["expected"] - np.log(2)) < 1e-12


def test_a_large_final_bias_fails_the_initial_loss_check_and_is_named(spirals):
    model = make_mlp()
    with mg.no_grad():
        model[4].bias.data[...] = [8.0, -8.0]
    before = parameters_of(model)
    result = sanity.check_initial_loss(model, nn.CrossEntropyLoss(), spirals.X_train, spirals.y_train)
    assert not result.passed
    assert "bias" in result.recommendation
    assert all(np.array_equal(before[name], p.data) for name, p in model.named_parameters())


def test_large_final_weights_fail_the_initial_loss_check_and_are_named(spirals):
    model = make_mlp()
    with mg.no_grad():
        model[4].weight.data[...] *= 300
    result = sanity.check_initial_loss(model, nn.CrossEntropyLoss(), spirals.X_train, spirals.y_train)
    assert not result.passed and "weights" in result.recommendation


class BatchMixer(nn.Module):
    """A bug: each output also sees the batch mean (a reduction over the wrong axis)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        hidden = self.layer(x)
        return hidden + hidden.mean(0)


def test_a_model_that_mixes_examples_fails_batch_independence(spirals):
    result = sanity.check_batch_independence(BatchMixer(), spirals.X_train[:8])
    assert not result.passed
    assert result.numbers["max_cross_example_gradient"] > 0


def test_an_mlp_passes_batch_independence(spirals):
    result = sanity.check_batch_independence(make_mlp(), spirals.X_train[:8])
    assert result.passed and result.numbers["max_cross_example_gradient"] == 0


def test_batchnorm_in_train_mode_is_the_named_expected_exception(spirals):
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    result = sanity.check_batch_independence(model, spirals.X_train[:8])
    assert result.passed
    assert "BatchNorm" in result.verdict and "eval mode" in result.verdict
    assert model.training  # the caller's model is untouched


# ------------------------------------------------------------------------------ overfit one batch


class DetachedHidden(nn.Module):
    """A bug: the hidden layer's output is detached, so no gradient reaches `hidden`."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        return self.out(self.hidden(x).relu().detach())


def test_a_healthy_model_overfits_one_batch_and_is_restored(spirals):
    model = make_mlp()
    before = parameters_of(model)
    result = sanity.overfit_one_batch(model, nn.CrossEntropyLoss(), adam, (spirals.X_train[:8], spirals.y_train[:8]))
    assert result.passed, result
    assert result.numbers["final_loss"] <= result.numbers["target"]
    assert all(np.array_equal(before[name], p.data) for name, p in model.named_parameters())


def test_a_detached_hidden_layer_fails_overfit_one_batch_and_is_named(spirals):
    mg.manual_seed(0)
    result = sanity.overfit_one_batch(DetachedHidden(), nn.CrossEntropyLoss(), adam,
                                      (spirals.X_train[:8], spirals.y_train[:8]))
    assert not result.passed
    assert set(result.numbers["no_gradient"]) == {"hidden.weight", "hidden.bias"}
    assert "hidden.weight" in result.recommendation


def test_dropout_and_weight_decay_are_off_during_the_check_and_back_after(spirals):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    created = []

    def adamw(parameters):
        created.append(optim.AdamW(parameters, lr=1e-2, weight_decay=0.5))
        return created[-1]

    result = sanity.overfit_one_batch(model, nn.CrossEntropyLoss(), adamw, (spirals.X_train[:8], spirals.y_train[:8]))
    assert result.passed, result
    assert model[2].p == 0.5 and created[0].param_groups[0]["weight_decay"] == 0.5
    assert result.numbers["final_loss"] <= result.numbers["target"]


def test_input_dependence_passes_for_a_model_that_uses_its_inputs(spirals):
    result = sanity.check_input_dependence(make_mlp, nn.CrossEntropyLoss(), adam, spirals.X_train, spirals.y_train)
    assert result.passed, result


class IgnoresInputs(nn.Module):
    """A bug: the inputs are overwritten before they reach the network."""

    def __init__(self):
        super().__init__()
        self.net = make_mlp()

    def forward(self, x):
        return self.net(x * 0)


def test_a_model_that_ignores_its_inputs_fails_input_dependence(spirals):
    result = sanity.check_input_dependence(IgnoresInputs, nn.CrossEntropyLoss(), adam, spirals.X_train, spirals.y_train)
    assert not result.passed


# ------------------------------------------------------------------------------ gradient check


def test_gradient_check_of_a_correct_model_is_good(spirals):
    result = sanity.check_gradients(make_mlp(), nn.CrossEntropyLoss(), spirals.X_train[:4], spirals.y_train[:4])
    assert result.passed and result.numbers["max_relative_error"] < sanity.GRADIENT_KINKS_OK


class WrongBackward(mg.Function):
    """y = x^2 with a wrong derivative (x instead of 2x)."""

    def forward(self, x):
        self.save_for_backward(x)
        return x.data ** 2

    def backward(self, grad):
        (x,) = self.saved_tensors
        return grad * x


class SquaresWrongly(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return WrongBackward.apply(self.layer(x))


def test_gradient_check_catches_a_wrong_backward_rule(spirals):
    result = sanity.check_gradients(SquaresWrongly(), nn.CrossEntropyLoss(), spirals.X_train[:4], spirals.y_train[:4])
    assert not result.passed and result.numbers["band"] == "wrong"


# ------------------------------------------------------------------------------ the suite


def test_the_suite_passes_a_correct_setup_and_stops_at_the_first_failure(spirals):
    suite = sanity.run_sanity_suite(make_mlp(), nn.CrossEntropyLoss(), adam, spirals.X_train, spirals.y_train,
                                    spirals.X_val, spirals.y_val, learning_rate=False)
    assert suite.passed, suite
    assert [result.name for result in suite.results] == ["data", "initial loss", "batch independence",
                                                         "overfit one batch", "gradient check"]
    y = spirals.y_train.copy()
    y[0] = 5
    suite = sanity.run_sanity_suite(make_mlp(), nn.CrossEntropyLoss(), adam, spirals.X_train, y, learning_rate=False)
    assert not suite.passed and len(suite.results) == 1 and suite.first_failure.name == "data"
    assert "stopped at: data" in str(suite)
