"""Optimizers on a plateau: Adam's L2 weight decay is not AdamW's decoupled weight decay, and
momentum carries SGD off a plateau where plain SGD stalls.

The task: XOR (four Gaussian clusters, 300 training points, full batch, so every change of the
loss is the optimizer's), a 2-16-16-2 tanh net with every weight drawn from N(0, 0.13^2) and zero
biases. Near w = 0 the net is nearly linear (tanh z ~ z), and no linear function fits XOR: the
best one predicts 0 everywhere, the loss is ln 2 = 0.693 and the gradient is small (its norm is
0.02 at the start). The origin is a saddle: the way down is to grow the weights until the units
bend, and the gradient grows only as the weights do. Five optimizers, same init, same 300 steps
(250 with fast=True):

    SGD              lr 0.1
    SGD + momentum   lr 0.1, momentum 0.9
    Adam             lr 0.002
    Adam + L2        lr 0.002, weight_decay 0.01  (torch.optim.Adam's weight_decay)
    AdamW            lr 0.002, weight_decay 0.01

(a) L2 regularization is not weight decay in Adam (Loshchilov & Hutter 2019, "Decoupled Weight
Decay Regularization"). Adam(weight_decay=lambda) adds the L2 term to the gradient before the
moments are computed, so the decay is normalized along with it:

    Adam + L2:  g' = g + lambda w,  m, v from g',  w <- w - lr m_hat / (sqrt(v_hat) + eps)
    AdamW:      w <- w (1 - lr lambda),            w <- w - lr m_hat / (sqrt(v_hat) + eps), m, v from g

sqrt(v_hat) is the root mean square of g', so while |g| >> lambda |w| the L2 part of Adam's step
is about lr lambda w / rms(g): the decoupled decay lr lambda w divided by the size of the
gradient. Weights with large gradients (rms(g) > 1) are decayed less than AdamW would, weights
with small ones far more; AdamW shrinks every weight by the same factor 1 - lr lambda whatever
its gradient. On this plateau every gradient is small: at the start lambda ||w|| = 0.023 is
already as large as the gradient's norm, so the L2 term is a good part of g' and Adam turns it
into a step of up to lr = 0.002 per weight. The weights shrink, the gradient (which grows with the
weights) shrinks with them, and the L2 term keeps the upper hand: the weight norm falls by about
1 % per step, 500x the lr lambda = 0.002 % per step of AdamW's decay, from 2.3 to 0.1 in 300
steps. The net collapses onto the saddle and the loss stays at ln 2 (the doctor finds vanishing
gradients: none are left). AdamW with the same weight_decay = 0.01 trains like plain Adam and
ends with a weight norm of 7.9, 77x Adam + L2's. The same number means a different regularizer
in the two optimizers, and in Adam + L2 its strength depends on the scale of the gradients.

(b) Momentum on the plateau. SGD moves each weight by lr g, less than 1e-3 of its size per step
here, and the loss is still 0.690 at the end (plain SGD does get out, at about step 530). The
doctor sees a loss that creeps down along a line and is still over 99 % of where it started:
lr_too_low. Momentum (PyTorch's SGD: v <- 0.9 v + g, w <- w - lr v) adds up the gradients of
past steps; on a plateau they point the same way, so v grows toward g / (1 - 0.9) = 10 g and
each step is up to 10x longer, with the same lr (Polyak 1964; Sutskever et al. 2013, "On the
importance of initialization and momentum in deep learning"). SGD + momentum leaves the plateau
6x sooner (the loss is below ln 2 / 2 at step 89) and ends near 0: healthy. Adam leaves as soon:
it divides each gradient by its own running size, so a small but steady gradient still moves
every weight by about lr per step.

reproduce() is plain SGD (FAILURE lr_too_low); fix() is SGD + momentum, and its measurements
carry the table of all five runs and the weight norms of Adam + L2 and AdamW. `runs()` gives the
five runs, `comparison(runs)` their `compare_runs` table, `figure(runs, path)` their loss curves
(`python -m diagnostics.experiments.optimizers [out.png]` prints and draws them).
"""

import numpy as np

import minigrad as mg
from diagnostics.compare import compare_runs
from diagnostics.experiments.base import mlp, train

TITLE = "Optimizers on a plateau: SGD stalls, momentum and Adam escape; Adam's L2 decay is not AdamW's"
FAILURE = "lr_too_low"
STATEMENT = ("from a small init on XOR (full batch), with the same weight_decay = 0.01: Adam + L2's weight norm "
             "shrinks more than 100x faster per step than AdamW's decay (lr x weight_decay), to below 10% of its "
             "initial value, and its loss stays within 1% of ln 2, while AdamW trains like Adam (loss < 0.05, "
             "weight norm within 5% of Adam's) and ends with a weight norm more than 30x Adam + L2's; reproduce: "
             "plain SGD at lr 0.1 stays within 1% of ln 2 = 0.693 and the doctor calls it lr_too_low; fix: SGD + "
             "momentum 0.9 at the same lr gets below ln 2 / 2 within the run and ends below 0.05, diagnosed "
             "healthy")

WIDTH, INIT_STD = 16, 0.13
SGD_LR, MOMENTUM, ADAM_LR, WEIGHT_DECAY = 0.1, 0.9, 0.002, 0.01
# The plateau is left when the loss falls below half of ln 2, the loss of a coin flip.
ESCAPED_LOSS = np.log(2) / 2

# name: (optimizer class, its settings)
OPTIMIZERS = {
    "SGD": (mg.optim.SGD, {"lr": SGD_LR}),
    f"SGD + momentum {MOMENTUM:g}": (mg.optim.SGD, {"lr": SGD_LR, "momentum": MOMENTUM}),
    "Adam": (mg.optim.Adam, {"lr": ADAM_LR}),
    f"Adam + L2 (weight_decay={WEIGHT_DECAY:g})": (mg.optim.Adam, {"lr": ADAM_LR, "weight_decay": WEIGHT_DECAY}),
    f"AdamW (weight_decay={WEIGHT_DECAY:g})": (mg.optim.AdamW, {"lr": ADAM_LR, "weight_decay": WEIGHT_DECAY}),
}
SGD, MOMENTUM_SGD, ADAM, ADAM_L2, ADAMW = OPTIMIZERS


def weight_norm(model) -> float:
    """The L2 norm of all the weight matrices together (biases left out, as they start at 0)."""
    return float(np.sqrt(sum(np.sum(p.data.astype(np.float64) ** 2)
                             for name, p in model.named_parameters() if name.endswith("weight"))))


def train_with(name: str, fast=False):
    """The net trained by the optimizer called `name` (a key of OPTIMIZERS)."""
    mg.manual_seed(0)
    data = mg.data.xor(n_samples=400, noise=0.3, seed=0)
    model = mlp([2, WIDTH, WIDTH, 2], activation=mg.nn.Tanh,
                init=lambda weight: mg.nn.init.normal_(weight, 0.0, INIT_STD), bias=0.0)
    initial_weight_norm = weight_norm(model)
    optimizer_class, settings = OPTIMIZERS[name]
    run = train(name, model, data, optimizer_class(model.parameters(), **settings), 250 if fast else 300)
    loss = run.history["loss"]
    escaped = np.flatnonzero(loss < ESCAPED_LOSS)
    run.measurements.update({
        "final_loss": float(loss[-1]),
        "escape_step": int(run.history.steps[escaped[0]]) if escaped.size else None,
        "initial_weight_norm": initial_weight_norm,
        "weight_norm": weight_norm(model),
    })
    return run


def runs(fast=False) -> dict:
    """{optimizer name: Run} for every optimizer in OPTIMIZERS."""
    return {name: train_with(name, fast) for name in OPTIMIZERS}


def table(all_runs: dict) -> list:
    """One row per optimizer: final loss, the step the loss left the plateau (None: never), the
    weights' norm at the start and at the end, and the doctor's diagnosis."""
    return [{"optimizer": name, "final_loss": round(run.measurements["final_loss"], 4),
             "escape_step": run.measurements["escape_step"],
             "initial_weight_norm": round(run.measurements["initial_weight_norm"], 4),
             "weight_norm": round(run.measurements["weight_norm"], 4), "diagnosis": run.report.primary}
            for name, run in all_runs.items()]


def format_table(rows: list) -> str:
    """The table as text, one line per optimizer."""
    width = max(len(row["optimizer"]) for row in rows)
    lines = [f"{'optimizer':<{width}}  {'final loss':>10}  {'escaped at':>10}  {'weight norm':>16}  diagnosis"]
    for row in rows:
        escaped = "never" if row["escape_step"] is None else str(row["escape_step"])
        norms = f"{row['initial_weight_norm']:.3g} -> {row['weight_norm']:.3g}"
        lines.append(f"{row['optimizer']:<{width}}  {row['final_loss']:>10.4f}  {escaped:>10}  {norms:>16}  "
                     f"{row['diagnosis']}")
    return "\n".join(lines)


def l2_term_over_gradient(run) -> float:
    """lambda ||w|| / ||g|| over the weight matrices at the first step: how large the L2 term
    Adam + L2 adds to the gradient is next to the loss's own gradient."""
    first_gradients = [values[0] for name, values in run.history.layers("grad_norm").items() if name.endswith("weight")]
    return float(WEIGHT_DECAY * run.measurements["initial_weight_norm"] / np.sqrt(np.sum(np.square(first_gradients))))


def shrink_per_step(run) -> float:
    """The average fraction of the weight norm lost per step: 1 - (final / initial) ^ (1 / steps)."""
    ratio = run.measurements["weight_norm"] / run.measurements["initial_weight_norm"]
    return float(1 - ratio ** (1 / len(run.history)))


def comparison(all_runs: dict):
    """compare_runs of the optimizers, with each one's settings."""
    return compare_runs({name: run.history for name, run in all_runs.items()},
                        hyperparameters={name: OPTIMIZERS[name][1] for name in all_runs})


def weight_norm_curve(run) -> np.ndarray:
    """The norm of all the weight matrices together at every recorded step."""
    layers = [values for name, values in run.history.layers("param_norm").items() if name.endswith("weight")]
    return np.sqrt(np.sum(np.square(layers), axis=0))


def figure(all_runs: dict, path=None):
    """The optimizers' loss curves (Comparison.plot, left) and their weight norms (right)."""
    from matplotlib.figure import Figure

    drawing = Figure(figsize=(13, 4.5), layout="constrained")
    losses, norms = drawing.subplots(1, 2)
    compared = comparison(all_runs)
    compared.plot(ax=losses)
    for name in compared.ranking:  # the order of the loss panel, so that each run keeps its colour
        norms.plot(all_runs[name].history.steps, weight_norm_curve(all_runs[name]), linewidth=1, label=name)
    norms.set_yscale("log")
    norms.set_xlabel("step")
    norms.set_ylabel("norm of the weight matrices")
    norms.set_title("Weight norms: Adam + L2 collapses them")
    norms.legend(fontsize="small")
    if path is not None:
        drawing.savefig(path)
    return drawing


def reproduce(fast=False):
    return train_with(SGD, fast)


def fix(fast=False):
    all_runs = runs(fast)
    run = all_runs[MOMENTUM_SGD]
    adam_l2, adamw = all_runs[ADAM_L2], all_runs[ADAMW]
    run.measurements.update({
        "table": table(all_runs),
        "adam_l2_weight_norm": adam_l2.measurements["weight_norm"],
        "adamw_weight_norm": adamw.measurements["weight_norm"],
        "adamw_over_adam_l2_weight_norm": adamw.measurements["weight_norm"] / adam_l2.measurements["weight_norm"],
        "l2_term_over_gradient_at_start": l2_term_over_gradient(adam_l2),
        "adam_l2_shrink_per_step": shrink_per_step(adam_l2),
        "adamw_decay_per_step": ADAM_LR * WEIGHT_DECAY,
    })
    return run


def show(fast=False, path=None) -> None:
    """Print the optimizers' table and the doctor on plain SGD, and draw their loss curves."""
    all_runs = runs(fast)
    print(f"{format_table(table(all_runs))}\n\n-- the doctor on {SGD}:\n{all_runs[SGD].report}\n")
    print(comparison(all_runs))
    if path is not None:
        figure(all_runs, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    import sys

    show(fast="--fast" in sys.argv, path=next((arg for arg in sys.argv[1:] if arg.endswith(".png")), None))
