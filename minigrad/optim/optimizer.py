"""Optimizer: the base class every update rule (SGD, Adam, ...) builds on.

An optimizer holds

* ``param_groups``: a list of dicts, each with ``"params"`` (a list of leaf tensors) and one
  value per hyperparameter (``"lr"``, ``"momentum"``, ...). Groups let parts of a model train
  with different settings, and their values may be edited between steps: learning-rate
  schedulers and the LR finder work by writing ``group["lr"]``.
* ``state``: a dict from parameter tensor to that parameter's own state (momentum buffers and
  moment estimates as ``np.ndarray``, step counts as ints), created at the parameter's first
  update.

Each subclass writes its update rule once, for one parameter, in ``_update_parameter``. `step`
calls it for every parameter that has a gradient, under ``no_grad``: the rule does its math on
the arrays and changes the parameter with an in-place Tensor method (``param.sub_``), which bumps
the parameter's version counter, so a backward pass through a graph that saved the old value
raises instead of computing a wrong gradient.

The state dict has PyTorch's layout: parameters are named by their position, counted across
the groups in order::

    {"state": {0: {"momentum_buffer": array}, ...},
     "param_groups": [{"lr": 0.1, ..., "params": [0, 1]}, {"lr": 0.01, ..., "params": [2]}]}
"""

from __future__ import annotations

import copy

import numpy as np

from minigrad.autograd import enable_grad, no_grad
from minigrad.tensor import Tensor


class Optimizer:
    """Base class: holds the parameter groups and the per-parameter state.

    params:   an iterable of tensors, or of dicts (one per group, each with a "params" entry and
              any hyperparameters that group overrides).
    defaults: every hyperparameter with its default value; a group takes the defaults for the
              values it does not set.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(
                "params should be an iterable of tensors or of dicts, but got a single Tensor; "
                "wrap it in a list: [tensor]"
            )
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        groups = _as_ordered_list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_options(self, options: dict) -> None:
        """Raise ValueError if a hyperparameter value is invalid (each subclass states its rules)."""

    # ------------------------------------------------------------------------------------------
    # parameter groups
    # ------------------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters, with the hyperparameters it sets; the rest come from the
        defaults. Useful to unfreeze layers during fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group has no 'params' entry: pass {'params': [tensors], ...}")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else _as_ordered_list(params)
        for position, param in enumerate(group["params"]):
            _check_parameter(param, position)
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)

        ids_in_group = [id(param) for param in group["params"]]
        if len(set(ids_in_group)) != len(ids_in_group):
            raise ValueError(
                "a parameter appears more than once in this parameter group; it would be updated "
                "twice per step. Pass each parameter once"
            )
        for index, other in enumerate(self.param_groups):
            if not set(ids_in_group).isdisjoint(id(param) for param in other["params"]):
                raise ValueError(
                    f"some parameters appear in more than one parameter group (already in group "
                    f"{index}); each parameter can belong to only one group"
                )
        self.param_groups.append(group)

    # ------------------------------------------------------------------------------------------
    # the training loop's calls
    # ------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``grad = None`` (default), or fill it with zeros.

        With None, the next step skips parameters the next backward does not reach; with zeros,
        it updates them with a zero gradient (which still moves them under momentum or decay).
        """
        for group in self.param_groups:
            for param in group["params"]:
                param.zero_grad(set_to_none)

    def step(self, closure=None):
        """Update every parameter that has a gradient; parameters whose ``.grad`` is None are
        skipped (and get no state).

        closure: optional function that clears the gradients, recomputes the loss, calls
                 backward and returns the loss; it runs (with grad mode on) before the update,
                 and its loss is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        self._update_parameter(param, group)
        return loss

    def _update_parameter(self, param: Tensor, group: dict) -> None:
        """Apply the update rule to one parameter, reading its gradient from ``param.grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not define its update rule")

    # ------------------------------------------------------------------------------------------
    # state dict
    # ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's layout (see the module docstring), with every array
        copied: saving it and training on leaves the saved state as it was."""
        position_of = {}
        param_groups = []
        for group in self.param_groups:
            saved_group = copy.deepcopy({key: value for key, value in group.items() if key != "params"})
            saved_group["params"] = [position_of.setdefault(id(param), len(position_of)) for param in group["params"]]
            param_groups.append(saved_group)
        state = {position_of[id(param)]: copy.deepcopy(param_state) for param, param_state in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by `state_dict` from an optimizer of the same kind over
        parameters of the same shapes, in the same groups and order.

        The group hyperparameters are taken from the state dict; state arrays are copied and cast
        to their parameter's dtype. The state dict is checked completely first: on any mismatch
        (number of groups, parameters per group, array shapes, missing hyperparameters) a
        ValueError names it and the optimizer is left unchanged.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            found = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(
                f"load_state_dict: expected a dict with 'state' and 'param_groups' (as returned by "
                f"state_dict()), got {found}"
            )
        new_groups, param_at = self._loaded_groups(list(state_dict["param_groups"]))
        new_state = {}
        for position, saved_state in state_dict["state"].items():
            if position not in param_at:
                raise ValueError(
                    f"load_state_dict: the state dict holds state for parameter {position!r}, which "
                    f"none of its parameter groups lists (they list {sorted(param_at)})"
                )
            new_state[param_at[position]] = _loaded_state(saved_state, param_at[position], position)

        self.state.clear()
        self.state.update(new_state)
        self.param_groups[:] = new_groups

    def _loaded_groups(self, saved_groups: list) -> tuple[list, dict]:
        """The parameter groups a state dict describes, holding this optimizer's parameters,
        and the map from the state dict's parameter positions to those parameters."""
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: the state dict has {len(saved_groups)} parameter groups, this "
                f"optimizer has {len(self.param_groups)}"
            )
        param_at = {}
        new_groups = []
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ValueError(
                    f"load_state_dict: parameter group {index} of the state dict is not a dict with 'params'"
                )
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: parameter group {index} has {len(saved['params'])} parameters "
                    f"in the state dict and {len(group['params'])} in this optimizer"
                )
            missing = [name for name in self.defaults if name not in saved]
            if missing:
                raise ValueError(
                    f"load_state_dict: parameter group {index} of the state dict lacks the "
                    f"{type(self).__name__} hyperparameters {missing}; was it saved from another "
                    "kind of optimizer?"
                )
            param_at.update(zip(saved["params"], group["params"]))
            new_group = copy.deepcopy({key: value for key, value in saved.items() if key != "params"})
            self._check_options(new_group)
            new_group["params"] = group["params"]
            new_groups.append(new_group)
        return new_groups, param_at

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        lines.append(")")
        return "\n".join(lines)


def _as_ordered_list(params) -> list:
    if isinstance(params, (set, frozenset)):
        raise TypeError(
            "optimizer parameters need to be in an ordered collection (the state dict names them "
            "by position), but got a set, whose order changes between runs; use a list"
        )
    return list(params)


def _check_parameter(param, position: int) -> None:
    """A parameter must be a leaf tensor that requires grad."""
    if not isinstance(param, Tensor):
        raise TypeError(f"optimizer can only optimize Tensors, but parameter {position} is a {type(param).__name__}")
    if not param.is_leaf:
        raise ValueError(
            f"can't optimize a non-leaf Tensor: parameter {position} (shape {param.shape}) was "
            f"computed by {param.grad_fn.name}. Optimize the leaf tensors it was computed from, "
            "or make it a leaf with x.detach().requires_grad_()"
        )
    if not param.requires_grad:
        raise ValueError(
            f"parameter {position} (shape {param.shape}) does not require grad, so it never gets a "
            "gradient; call requires_grad_() on it, or leave it out of the optimizer"
        )


def _loaded_state(saved_state: dict, param: Tensor, position) -> dict:
    """A copy of one parameter's saved state, its arrays checked against the parameter's shape
    and cast to its dtype."""
    if not isinstance(saved_state, dict):
        raise ValueError(
            f"load_state_dict: the state of parameter {position!r} should be a dict, got "
            f"{type(saved_state).__name__}"
        )
    state = {}
    for name, value in saved_state.items():
        if isinstance(value, np.ndarray):
            if value.shape != param.shape:
                raise ValueError(
                    f"load_state_dict: state {name!r} of parameter {position!r} has shape "
                    f"{value.shape}, but the parameter has shape {param.shape}"
                )
            state[name] = value.astype(param.dtype, copy=True)
        else:
            state[name] = copy.deepcopy(value)
    return state


def require_non_negative(options: dict, *names: str) -> None:
    """Raise ValueError naming the first of `names` whose value is negative (or NaN)."""
    for name in names:
        value = options[name]
        if not value >= 0:
            raise ValueError(f"invalid {name} value: {value!r}; {name} must be >= 0")


def zeros_state(state: dict, name: str, param: Tensor) -> np.ndarray:
    """``state[name]``, created as zeros of the parameter's shape and dtype the first time it is
    needed (also when an option such as momentum is switched on after training started)."""
    buffer = state.get(name)
    if buffer is None:
        buffer = state[name] = np.zeros_like(param.data)
    return buffer
