"""Random graphs built twice, in minigrad and in a tiny scalar reference engine, must agree on
every value and every gradient.

The reference is micrograd's idea in a few lines: a `Scalar` keeps its value, the scalars it was
computed from, and the local derivative d(self)/d(child) for each; the chain rule then gives
d(root)/d(node) = sum over the uses of node of local derivative * d(root)/d(user). Hypothesis
builds the graph one op at a time, reusing nodes freely (a node may feed many later nodes, and
the same node may be both inputs of one op). Each new node's value is checked, and so is its
gradient with respect to every node made before it (minigrad.grad); backward() from random
roots must add up in the leaves' .grad.

Tolerance: values agree to 1e-9 relative. A gradient is a sum over paths, and float addition is
exact up to machine epsilon times the sum of the magnitudes of its terms, so a gradient is held
to 1e-9 relative to that magnitude (the same backward pass taken over |local derivatives|),
which equals |gradient| whenever no two paths cancel.
"""

import math

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, rule

import minigrad as mg

# ---------------------------------------------------------------- the reference engine


class Scalar:
    """A number that remembers which numbers it was computed from (micrograd's Value)."""

    def __init__(self, value, children=(), local_derivatives=(), requires_grad=False):
        self.value = value
        self.children = children                    # the inputs of the op that made it
        self.local_derivatives = local_derivatives  # d(self) / d(child), one per child
        self.requires_grad = requires_grad or any(child.requires_grad for child in children)


def ref_add(a, b): return Scalar(a.value + b.value, (a, b), (1.0, 1.0))
def ref_sub(a, b): return Scalar(a.value - b.value, (a, b), (1.0, -1.0))
def ref_mul(a, b): return Scalar(a.value * b.value, (a, b), (b.value, a.value))
def ref_div(a, b): return Scalar(a.value / b.value, (a, b), (1 / b.value, -a.value / b.value**2))
def ref_neg(a): return Scalar(-a.value, (a,), (-1.0,))
def ref_pow(a, p): return Scalar(a.value**p, (a,), (p * a.value ** (p - 1),))
def ref_exp(a): return Scalar(math.exp(a.value), (a,), (math.exp(a.value),))
def ref_tanh(a): return Scalar(math.tanh(a.value), (a,), (1 - math.tanh(a.value) ** 2,))
def ref_relu(a): return Scalar(max(a.value, 0.0), (a,), (1.0 if a.value > 0 else 0.0,))
def ref_sum(scalars): return Scalar(sum(s.value for s in scalars), tuple(scalars), (1.0,) * len(scalars))


def reference_gradients(root):
    """d(root)/d(node) for every node the root depends on, and the magnitude that bounds each
    one's rounding error (the same sums over |local derivatives|). Recursive, as micrograd:
    these graphs are small, and the engine's own sort is iterative, so the two differ."""
    order, visited = [], set()

    def visit(node):
        if id(node) not in visited:
            visited.add(id(node))
            for child in node.children:
                visit(child)
            order.append(node)

    visit(root)
    grads, magnitudes = {id(root): 1.0}, {id(root): 1.0}
    for node in reversed(order):
        for child, local in zip(node.children, node.local_derivatives):
            grads[id(child)] = grads.get(id(child), 0.0) + local * grads[id(node)]
            magnitudes[id(child)] = magnitudes.get(id(child), 0.0) + abs(local) * magnitudes[id(node)]
    return grads, magnitudes


# ---------------------------------------------------------------- the machine

# Each op: (minigrad function, reference function on Scalars, the inputs it is applied to).
# Domains keep derivatives bounded and away from kinks: 1 - tanh(x)^2 loses relative precision
# for large |x|, and relu and division change abruptly at 0.
UNARY = {
    "neg": (lambda t: -t, ref_neg, lambda v: True),
    "exp": (mg.exp, ref_exp, lambda v: abs(v) <= 4),
    "tanh": (mg.tanh, ref_tanh, lambda v: abs(v) <= 3),
    "relu": (mg.relu, ref_relu, lambda v: abs(v) >= 0.1),
}
BINARY = {
    "add": (lambda a, b: a + b, ref_add, lambda a, b: True),
    "sub": (lambda a, b: a - b, ref_sub, lambda a, b: True),
    "mul": (lambda a, b: a * b, ref_mul, lambda a, b: True),
    "div": (lambda a, b: a / b, ref_div, lambda a, b: abs(b) >= 0.5),
}
EXPONENTS = {2: lambda v: True, 3: lambda v: True, -1: lambda v: abs(v) >= 0.5,
             -2: lambda v: abs(v) >= 0.5, 0.5: lambda v: v >= 0.1, 1.5: lambda v: v >= 0.1}
LARGEST_VALUE = 100.0  # larger values are dropped, so products of derivatives stay finite

values = st.floats(-3, 3)


class Node:
    """One tensor of the graph and the reference Scalars of its elements (one for shape ())."""

    def __init__(self, tensor, scalars):
        self.tensor, self.scalars = tensor, scalars


def broadcast(a, b):
    """The element pairs of a op b, a shape-() node being used for every element of the other."""
    size = max(len(a.scalars), len(b.scalars))
    return [(a.scalars[i % len(a.scalars)], b.scalars[i % len(b.scalars)]) for i in range(size)]


def per_element(node, numbers):
    """The numbers a reference dict holds for the node's Scalars, as an array of its shape."""
    return np.array([numbers[id(s)] for s in node.scalars]).reshape(node.tensor.shape)


def assert_op_output_agrees(node):
    """Value, dtype, and history of an op's output: recorded exactly when an input needs grad."""
    expected = np.array([s.value for s in node.scalars]).reshape(node.tensor.shape)
    assert node.tensor.dtype == np.float64
    np.testing.assert_allclose(node.tensor.data, expected, rtol=1e-9, atol=1e-12)
    requires_grad = any(s.requires_grad for s in node.scalars)
    assert node.tensor.requires_grad == requires_grad
    assert (node.tensor.grad_fn is not None) == requires_grad


def assert_gradient_agrees(actual, expected, magnitudes):
    """|actual - expected| <= 1e-9 * magnitude, elementwise (see the module docstring)."""
    error = np.abs(actual - expected)
    assert np.all(error <= 1e-9 * magnitudes), f"gradient {actual}, reference {expected} (magnitude {magnitudes})"


class ScalarGraphMachine(RuleBasedStateMachine):
    """Graphs of shape-() tensors."""

    shapes = st.just(())
    nodes = Bundle("nodes")

    def __init__(self):
        super().__init__()
        self.all_nodes = []
        self.leaves = []
        # id(leaf) -> (the .grad its backward calls should add up to, its magnitude), or None
        self.expected_leaf_grads = {}

    def new_node(self, tensor, scalars):
        """The node, its value and gradients checked against the reference, or nothing if its
        values grew too large."""
        if not all(abs(s.value) <= LARGEST_VALUE for s in scalars):
            return multiple()
        node = Node(tensor, scalars)
        assert_op_output_agrees(node)
        self.all_nodes.append(node)
        if tensor.requires_grad:
            self.check_gradients(node)
        return node

    def leaf(self, data, requires_grad):
        shape = data.draw(self.shapes, label="shape")
        size = int(np.prod(shape))
        elements = np.array(data.draw(st.lists(values, min_size=size, max_size=size), label="elements"))
        tensor = mg.tensor(elements.reshape(shape), requires_grad=requires_grad)
        node = Node(tensor, [Scalar(float(v), requires_grad=requires_grad) for v in elements])
        self.all_nodes.append(node)
        if requires_grad:
            self.leaves.append(node)
            self.expected_leaf_grads[id(node)] = None
        return node

    @initialize(target=nodes, data=st.data())
    def first_variable(self, data):
        return self.leaf(data, requires_grad=True)

    @rule(target=nodes, data=st.data())
    def variable(self, data):
        return self.leaf(data, requires_grad=True)

    @rule(target=nodes, data=st.data())
    def constant(self, data):
        return self.leaf(data, requires_grad=False)

    @rule(target=nodes, x=nodes, name=st.sampled_from(sorted(UNARY)))
    def unary(self, x, name):
        function, reference, domain = UNARY[name]
        if not all(domain(s.value) for s in x.scalars):
            return multiple()
        return self.new_node(function(x.tensor), [reference(s) for s in x.scalars])

    @rule(target=nodes, a=nodes, b=nodes, name=st.sampled_from(sorted(BINARY)))
    def binary(self, a, b, name):
        function, reference, domain = BINARY[name]
        pairs = broadcast(a, b)
        if not all(domain(sa.value, sb.value) for sa, sb in pairs):
            return multiple()
        return self.new_node(function(a.tensor, b.tensor), [reference(sa, sb) for sa, sb in pairs])

    @rule(target=nodes, x=nodes, name=st.sampled_from(sorted(BINARY)))
    def binary_with_itself(self, x, name):
        """x op x: one node as both inputs, so its gradient gets two contributions from one op."""
        return self.binary(x, x, name)

    @rule(target=nodes, x=nodes, number=values, name=st.sampled_from(sorted(BINARY)), number_first=st.booleans())
    def with_python_number(self, x, number, name, number_first):
        """x op 2.5 and 2.5 op x: the number is a constant of x's dtype."""
        function, reference, domain = BINARY[name]
        constant = Scalar(number)
        pairs = [(constant, s) if number_first else (s, constant) for s in x.scalars]
        if not all(domain(sa.value, sb.value) for sa, sb in pairs):
            return multiple()
        tensor = function(number, x.tensor) if number_first else function(x.tensor, number)
        return self.new_node(tensor, [reference(sa, sb) for sa, sb in pairs])

    @rule(target=nodes, x=nodes, exponent=st.sampled_from(sorted(EXPONENTS)))
    def power(self, x, exponent):
        if not all(EXPONENTS[exponent](s.value) for s in x.scalars):
            return multiple()
        return self.new_node(x.tensor**exponent, [ref_pow(s, exponent) for s in x.scalars])

    @rule(target=nodes, x=nodes)
    def total(self, x):
        return self.new_node(x.tensor.sum(), [ref_sum(x.scalars)])

    def check_gradients(self, root):
        """d(sum of root)/d(node) for every node made so far, by minigrad.grad and by the
        reference: None exactly for the nodes the root does not depend on."""
        expected, magnitudes = reference_gradients(ref_sum(root.scalars))
        tracked = [node for node in self.all_nodes if node.tensor.requires_grad]
        grads = mg.grad(root.tensor.sum(), [node.tensor for node in tracked], retain_graph=True, allow_unused=True)
        for node, grad in zip(tracked, grads):
            used = [id(s) in expected for s in node.scalars]
            assert all(used) or not any(used)
            if not any(used):
                assert grad is None
                continue
            assert grad.shape == node.tensor.shape and grad.dtype == np.float64 and not grad.requires_grad
            assert_gradient_agrees(grad.data, per_element(node, expected), per_element(node, magnitudes))

    @rule(root=nodes)
    def backward(self, root):
        """root.sum().backward() adds d(sum of root)/d(leaf) into the .grad of every leaf it
        depends on, on top of what earlier backward calls left there."""
        if not root.tensor.requires_grad:
            return
        expected, magnitudes = reference_gradients(ref_sum(root.scalars))
        root.tensor.sum().backward(retain_graph=True)
        for leaf in self.leaves:
            if id(leaf.scalars[0]) in expected:
                new = (per_element(leaf, expected), per_element(leaf, magnitudes))
                previous = self.expected_leaf_grads[id(leaf)]
                self.expected_leaf_grads[id(leaf)] = new if previous is None else (
                    previous[0] + new[0], previous[1] + new[1])
            if self.expected_leaf_grads[id(leaf)] is None:
                assert leaf.tensor.grad is None
            else:
                assert_gradient_agrees(leaf.tensor.grad, *self.expected_leaf_grads[id(leaf)])


class BroadcastGraphMachine(ScalarGraphMachine):
    """Graphs mixing shape () and shape (3,): a scalar broadcast against a vector gets the sum of
    the gradients of all the elements it was used for."""

    shapes = st.sampled_from([(), (3,)])


TestScalarGraphs = ScalarGraphMachine.TestCase
TestScalarGraphs.settings = settings(stateful_step_count=30)
TestBroadcastGraphs = BroadcastGraphMachine.TestCase
TestBroadcastGraphs.settings = settings(stateful_step_count=30)
