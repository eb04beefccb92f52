"""Module mechanics: registration, traversal names, modes, hooks, apply, zero_grad, repr,
containers and Parameter."""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.tensor import RemovableHandle


def build_model(lib):
    """The same architecture in minigrad or torch (`lib`): a nested module with a Sequential,
    a ModuleList, buffers, a bare Parameter and a shared (tied) layer."""
    nn_namespace = lib.nn

    class Block(nn_namespace.Module):
        def __init__(self):
            super().__init__()
            self.body = nn_namespace.Sequential(nn_namespace.Linear(3, 4), nn_namespace.ReLU(), nn_namespace.Linear(4, 3))
            self.norm = nn_namespace.BatchNorm1d(3)

        def forward(self, x):
            return self.norm(self.body(x))

    class Model(nn_namespace.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn_namespace.ModuleList([Block(), Block()])
            self.head = nn_namespace.Linear(3, 2, bias=False)
            self.tied = self.head
            self.scale = nn_namespace.Parameter(lib.ones(1))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.head(x) * self.scale

    return Model()


EXPECTED_PARAMETER_NAMES = [
    "scale",
    "blocks.0.body.0.weight", "blocks.0.body.0.bias", "blocks.0.body.2.weight", "blocks.0.body.2.bias",
    "blocks.0.norm.weight", "blocks.0.norm.bias",
    "blocks.1.body.0.weight", "blocks.1.body.0.bias", "blocks.1.body.2.weight", "blocks.1.body.2.bias",
    "blocks.1.norm.weight", "blocks.1.norm.bias",
    "head.weight",
]


# ----------------------------------------------------------------------------------------------
# registration and traversal
# ----------------------------------------------------------------------------------------------


def test_named_parameters_are_dotted_paths_listed_once():
    model = build_model(mg)
    names = [name for name, _ in model.named_parameters()]
    assert names == EXPECTED_PARAMETER_NAMES
    assert len(list(model.parameters())) == len(EXPECTED_PARAMETER_NAMES)
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())


def test_named_parameters_match_pytorch():
    torch = pytest.importorskip("torch")
    torch_names = [name for name, _ in build_model(torch).named_parameters()]
    assert [name for name, _ in build_model(mg).named_parameters()] == torch_names
    torch_buffers = [name for name, _ in build_model(torch).named_buffers()]
    assert [name for name, _ in build_model(mg).named_buffers()] == torch_buffers
    torch_modules = [name for name, _ in build_model(torch).named_modules()]
    assert [name for name, _ in build_model(mg).named_modules()] == torch_modules
    assert list(build_model(mg).state_dict()) == list(build_model(torch).state_dict())


def test_shared_module_is_listed_once_but_appears_under_both_names_in_state_dict():
    model = build_model(mg)
    module_names = [name for name, _ in model.named_modules()]
    assert "head" in module_names and "tied" not in module_names
    assert [name for name, _ in model.named_children()] == ["blocks", "head"]
    assert "tied.weight" in model.state_dict()
    assert len([name for name, _ in model.named_parameters(remove_duplicate=False)]) == len(EXPECTED_PARAMETER_NAMES) + 1


def test_named_parameters_with_prefix_and_without_recursion():
    model = build_model(mg)
    assert [name for name, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert next(iter(model.named_parameters(prefix="model")))[0] == "model.scale"


def test_buffers_persistent_and_not():
    module = nn.Module()
    module.register_buffer("kept", mg.zeros(2))
    module.register_buffer("scratch", mg.ones(2), persistent=False)
    assert [name for name, _ in module.named_buffers()] == ["kept", "scratch"]
    assert list(module.state_dict()) == ["kept"]
    module.kept = mg.ones(3)
    assert module.kept.shape == (3,) and module.state_dict()["kept"].shape == (3,)
    with pytest.raises(TypeError, match="buffer 'kept'"):
        module.kept = np.zeros(3)
    with pytest.raises(KeyError, match="already exists"):
        module.register_buffer("training", mg.zeros(1))
    with pytest.raises(KeyError, match="contain no '.'"):
        module.register_buffer("a.b", mg.zeros(1))


def test_assigning_a_plain_tensor_to_a_parameter_name_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'.*nn.Parameter"):
        layer.weight = mg.zeros(2, 2)
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert "bias" in layer._parameters and layer.bias is None


def test_reassigning_a_parameter_keeps_its_place_and_deleting_removes_it():
    layer = nn.Linear(2, 2)
    layer.weight = nn.Parameter(mg.zeros(2, 2))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    del layer.weight
    assert [name for name, _ in layer.named_parameters()] == ["bias"]
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        layer.weight


def test_assignment_before_init_is_refused():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(mg.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Forgetful()


def test_plain_attributes_are_not_registered():
    module = nn.Module()
    module.note = mg.zeros(2)
    module.layers = [nn.Linear(1, 1)]
    assert list(module.parameters()) == [] and list(module.state_dict()) == []


def test_missing_forward_says_so():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(mg.zeros(1))


# ----------------------------------------------------------------------------------------------
# modes, apply, zero_grad, requires_grad_, to
# ----------------------------------------------------------------------------------------------


def test_train_and_eval_propagate_to_every_descendant():
    model = build_model(mg)
    assert model.eval() is model
    assert all(not module.training for module in model.modules())
    model.train()
    assert all(module.training for module in model.modules())
    model.blocks[1].eval()
    assert [module.training for module in model.blocks] == [True, False]
    with pytest.raises(ValueError, match="True or False"):
        model.train("no")


def test_apply_visits_children_before_parents_and_returns_self():
    model = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU(), nn.Tanh()))
    visited = []
    assert model.apply(lambda module: visited.append(type(module).__name__)) is model
    assert visited == ["Linear", "ReLU", "Tanh", "Sequential", "Sequential"]


def test_zero_grad_sets_to_none_or_zero():
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))
    model(mg.randn(4, 3)).sum().backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not np.any(p.grad) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_freezes_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    model(mg.randn(4, 3)).sum().backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None


def test_to_converts_floating_parameters_and_buffers_but_not_counters():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    weight = model[0].weight
    assert model.double() is model
    assert model[0].weight is weight and weight.dtype == np.float64
    assert model[1].running_var.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="floating"):
        model.to(np.int64)


def test_deepcopy_gives_an_independent_module():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    clone = copy.deepcopy(model)
    assert [name for name, _ in clone.named_parameters()] == [name for name, _ in model.named_parameters()]
    with mg.no_grad():
        clone[0].weight.fill_(0.0)
    assert np.any(model[0].weight.data != 0)


# ----------------------------------------------------------------------------------------------
# hooks
# ----------------------------------------------------------------------------------------------


def test_forward_hook_sees_args_and_output_and_may_replace_the_output():
    layer = nn.Linear(2, 2)
    seen = []

    def record(module, args, output):
        seen.append((module, args, output))

    handle = layer.register_forward_hook(record)
    assert isinstance(handle, RemovableHandle)
    x = mg.randn(3, 2)
    out = layer(x)
    assert seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is out

    replace = layer.register_forward_hook(lambda module, args, output: output * 0)
    assert not np.any(layer(x).data)
    replace.remove()
    handle.remove()
    assert np.any(layer(x).data) and len(seen) == 2


def test_forward_pre_hook_may_replace_args_with_a_tuple_or_a_single_value():
    layer = nn.Identity()
    x, y = mg.ones(2), mg.zeros(2)
    with layer.register_forward_pre_hook(lambda module, args: (y,)):
        assert layer(x) is y
    with layer.register_forward_pre_hook(lambda module, args: y):
        assert layer(x) is y
    with layer.register_forward_pre_hook(lambda module, args: None):
        assert layer(x) is x
    assert layer._forward_pre_hooks == []


def test_pre_hooks_run_before_forward_and_hooks_after_in_registration_order():
    events = []
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda m, a: events.append("pre 1"))
    layer.register_forward_pre_hook(lambda m, a: events.append("pre 2"))
    layer.register_forward_hook(lambda m, a, o: events.append("post 1"))
    layer.register_forward_hook(lambda m, a, o: events.append("post 2"))
    layer(mg.zeros(1))
    assert events == ["pre 1", "pre 2", "post 1", "post 2"]


def test_a_hook_may_remove_itself_while_running():
    layer = nn.Identity()
    calls = []

    def once(module, args, output):
        calls.append("once")
        handle.remove()

    handle = layer.register_forward_hook(once)
    layer.register_forward_hook(lambda m, a, o: calls.append("always"))
    layer(mg.zeros(1))
    layer(mg.zeros(1))
    assert calls == ["once", "always", "always"]


def test_hooks_on_submodules_see_every_activation():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    shapes = {}

    def record_shape(name):
        def hook(module, args, output):
            shapes[name] = output.shape
        return hook

    for name, module in model.named_modules():
        if name:
            module.register_forward_hook(record_shape(name))
    model(mg.randn(5, 3))
    assert shapes == {"0": (5, 4), "1": (5, 4), "2": (5, 2)}


# ----------------------------------------------------------------------------------------------
# repr
# ----------------------------------------------------------------------------------------------


def small_sequential(nn_namespace):
    return nn_namespace.Sequential(
        nn_namespace.Linear(2, 16), nn_namespace.ReLU(), nn_namespace.Dropout(0.1),
        nn_namespace.Sequential(nn_namespace.Linear(16, 16), nn_namespace.BatchNorm1d(16), nn_namespace.Tanh()),
        nn_namespace.ModuleList([nn_namespace.LayerNorm(16), nn_namespace.LayerNorm(16), nn_namespace.GELU("tanh")]),
        nn_namespace.Linear(16, 1, bias=False),
    )


def test_repr_prints_the_module_tree():
    text = repr(small_sequential(nn))
    assert text.startswith("Sequential(\n  (0): Linear(in_features=2, out_features=16, bias=True)\n  (1): ReLU()\n")
    assert "\n  (3): Sequential(\n    (0): Linear(in_features=16, out_features=16, bias=True)\n" in text
    assert "(0-1): 2 x LayerNorm((16,), eps=1e-05, elementwise_affine=True, bias=True)" in text
    assert text.endswith("(5): Linear(in_features=16, out_features=1, bias=False)\n)")


def test_repr_matches_pytorch():
    torch = pytest.importorskip("torch")
    assert repr(small_sequential(nn)) == str(small_sequential(torch.nn))
    layers = [
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)), (nn.PReLU(3), torch.nn.PReLU(3)),
        (nn.ELU(0.5), torch.nn.ELU(0.5)), (nn.Softplus(2.0, 10.0), torch.nn.Softplus(2.0, 10.0)),
        (nn.BatchNorm1d(4, momentum=None, affine=False), torch.nn.BatchNorm1d(4, momentum=None, affine=False)),
        (nn.Embedding(10, 3, padding_idx=-1), torch.nn.Embedding(10, 3, padding_idx=-1)),
        (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)), (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.LogSoftmax(1), torch.nn.LogSoftmax(1)), (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
        (nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)), (nn.Sequential(), torch.nn.Sequential()),
    ]
    for ours, theirs in layers:
        assert repr(ours) == repr(theirs)


# ----------------------------------------------------------------------------------------------
# containers
# ----------------------------------------------------------------------------------------------


def test_sequential_indexing_slicing_and_append():
    first, second, third = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    model = nn.Sequential(first, second, third)
    assert len(model) == 3 and list(model) == [first, second, third]
    assert model[0] is first and model[-1] is third
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == [second, third]
    assert list(tail._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        model[3]
    model[1] = nn.Tanh()
    assert isinstance(model[1], nn.Tanh)
    assert model.append(nn.Sigmoid()) is model and len(model) == 4
    x = mg.randn(4, 2)
    expected = mg.sigmoid(third(mg.tanh(first(x))))
    np.testing.assert_array_equal(model(x).data, expected.data)


def test_sequential_from_ordered_dict_uses_its_names():
    model = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert [name for name, _ in model.named_parameters()] == ["hidden.weight", "hidden.bias"]
    assert isinstance(model.act, nn.ReLU)


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.insert(0, nn.Tanh())
    assert isinstance(layers[0], nn.Tanh) and [name for name, _ in layers.named_children()] == ["0", "1", "2", "3"]
    assert isinstance(layers[1:], nn.ModuleList) and len(layers[1:]) == 3
    layers[-1] = nn.ReLU()
    assert isinstance(layers[3], nn.ReLU)
    assert layers.extend([nn.Sigmoid()]) is layers and len(layers) == 5


def test_residual_adds_the_block_output_and_refuses_shape_changes():
    block = nn.Linear(3, 3)
    x = mg.randn(4, 3)
    np.testing.assert_array_equal(nn.Residual(block)(x).data, (x + block(x)).data)
    with pytest.raises(ValueError, match=r"Residual: the block maps shape \(4, 3\) to \(4, 2\)"):
        nn.Residual(nn.Linear(3, 2))(x)


# ----------------------------------------------------------------------------------------------
# Parameter and dtypes
# ----------------------------------------------------------------------------------------------


def test_parameter_is_a_slotted_tensor_that_requires_grad():
    param = nn.Parameter([1.0, 2.0])
    assert isinstance(param, mg.Tensor) and param.requires_grad and param.is_leaf
    assert param.dtype == np.float32
    assert not hasattr(param, "__dict__")
    assert repr(param) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert not nn.Parameter(mg.zeros(2), requires_grad=False).requires_grad


def test_parameter_from_a_tensor_shares_its_memory_and_from_float64_keeps_the_dtype():
    source = mg.zeros(3)
    param = nn.Parameter(source)
    with mg.no_grad():
        param.fill_(2.0)
    assert np.all(source.data == 2.0) and source._version == param._version
    assert nn.Parameter(np.zeros(2)).dtype == np.float64


def test_layer_parameters_default_to_float32_and_follow_the_default_dtype():
    assert nn.Linear(2, 2).weight.dtype == np.float32
    assert nn.Linear(2, 2, dtype=np.float64).bias.dtype == np.float64
    mg.set_default_dtype(np.float64)
    try:
        assert nn.Linear(2, 2).weight.dtype == np.float64
        assert nn.BatchNorm1d(2).running_mean.dtype == np.float64
    finally:
        mg.set_default_dtype(np.float32)
    with pytest.raises(TypeError, match="floating dtype"):
        nn.Linear(2, 2, dtype=np.int64)


def test_layer_sizes_must_be_non_negative_integers():
    with pytest.raises(ValueError, match="in_features must be a non-negative integer"):
        nn.Linear(2.5, 3)
    with pytest.raises(ValueError, match="num_embeddings"):
        nn.Embedding(-1, 3)
