"""Batch size and the linear scaling rule: at a fixed learning rate a large batch learns less per
sample; scaling the learning rate with the batch recovers it, up to a limit.

This experiment is a sweep: the same net (2-32-32-2 ReLU), data (2048 moons points) and seed,
trained by SGD with momentum 0.9 on the same budget of 16,384 samples (8 epochs of 2048) at batch
sizes 8, 32, 128 and 512 (fast=True leaves out 8, the slowest to run). reproduce() and fix() each
return the run of the largest batch, with the whole sweep's table in `run.measurements["table"]`;
`sweep()` gives every run, `comparison()` their `compare_runs` table and `figure()` the loss curves
against samples seen (`python -m diagnostics.experiments.batch_size [--fast] [out.png]` prints the
tables with the doctor's advice and draws them). The final loss of a run is its validation loss
averaged over the last eighth of the samples (the last 4 of 32 evaluations, one every 512 samples
at every batch size), which evens out the step-to-step noise of small batches.

Why a fixed learning rate fails. A step with a batch of B samples is w <- w - lr g_B, with
g_B = (1/B) sum_i grad l(x_i, w): its mean is the full gradient whatever B is, only its noise
shrinks (variance ~ 1/B). So at a fixed lr each step makes about the same progress, and a budget of
S samples buys S / B steps: batch 32 takes 512 steps, batch 512 takes 32. At lr 0.01 the final loss
grows with the batch: 0.09 at batch 8, 0.20 at batch 32, 1.5x that at 128, 2.2x at 512; the
batch-512 run ends at 0.44, the loss the batch-32 run had after its own first 32 steps (0.42): it
learned what 32 steps teach, from 16 times the data. The doctor sees its loss fall along a straight
line (in log scale) that never bends, still 64 % of where it started: lr_too_low.

The fix: the linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training
ImageNet in 1 Hour", section 2). Compare k steps of batch B at lr with one step of batch kB at lr':

    k small steps:  w_(t+k) = w_t - lr  (1/B)  sum_(j<k) sum_(i in batch j) grad l(x_i, w_(t+j))
    one big step:   w_(t+1) = w_t - lr' (1/kB) sum_(j<k) sum_(i in batch j) grad l(x_i, w_t)

If the gradient barely changes over those k steps (grad l(x, w_(t+j)) ~ grad l(x, w_t)), the two
are equal for lr' = k lr: multiply the learning rate by k = B / 32 (lr = 0.01 B / 32: batch 8 gets
0.0025, batch 512 gets 0.16). The assumption is worst at the start, when the weights change fast,
so the rule comes with a warmup: start at the reference lr and ramp linearly to k lr (LinearLR over
the first epoch here; Goyal et al. use 5 of 90 epochs). With it, batch 8 and batch 128 end within
10 % of batch 32's loss (128 went from 1.5x to 1.08x). The ramp is a precaution at these learning
rates: the runs end about the same without it.

The limit. At batch 512 (k = 16) the rule falls short: the run ends 1.3x above batch 32's loss. The
rule assumes the run is long next to anything that takes a fixed number of steps, and at batch 512
the run is 32 steps: momentum (v <- 0.9 v + g, w <- w - lr v) needs about 1 / (1 - 0.9) = 10 steps
to build up to its full speed lr / (1 - 0.9), and the warmup takes 4, so the first third of the run
goes slower, where batch 32 spends 2 % of its 512 steps that way. (With plain SGD, lr 0.05 at batch
32, the same sweep holds up to batch 512 within 5 %.) Goyal et al.'s rule held up to k = 32 on
ImageNet, where 90 epochs are thousands of steps; McCandlish et al. 2018 ("An Empirical Model of
Large-Batch Training") describe the general limit: past a "critical batch size", set by the noise
of the gradient, a bigger batch stops saving steps. Past the limit the learning rate has to be
tuned, not scaled: at batch 512, 2x and 4x the rule's lr end at 0.8x and 0.7x of batch 32's loss
(fix() measures them). The doctor no longer says lr_too_low; it flags every layer's
update-to-weight ratio, above 1e-2 per step: CS231n's rule of thumb (about 1e-3) is for long runs,
and a 32-step run has to take large steps (here, larger ones do better still).
"""

import numpy as np

import minigrad as mg
from diagnostics.compare import compare_runs
from diagnostics.experiments.base import mlp, train
from diagnostics.history import History

TITLE = "Batch size: at a fixed lr big batches learn less per sample; linear lr scaling recovers it, up to a limit"
FAILURE = "lr_too_low"
STATEMENT = ("a sweep over batch sizes on the same budget of 16,384 samples; reproduce: at a fixed lr 0.01 the "
             "final loss grows with the batch size, batch 512's is more than 1.8x batch 32's and within 15% of the "
             "loss batch 32 had after as many steps (32), and the doctor calls the batch-512 run lr_too_low; fix: "
             "with lr = 0.01 x B / 32 and a one-epoch LinearLR warmup, batch 8 and batch 128 end within 15% of "
             "batch 32's loss; the limit shows at batch 512 (k = 16, 32 steps): it still ends more than 1.25x "
             "above batch 32 (lr_too_low is gone; the doctor flags update/weight ratios above 1e-2), and a 2x or "
             "4x larger lr does better than the rule's there")

BATCH_SIZES, FAST_BATCH_SIZES = (8, 32, 128, 512), (32, 128, 512)
REFERENCE_BATCH, REFERENCE_LR, MOMENTUM, WIDTH = 32, 0.01, 0.9, 32
TRAIN_SAMPLES, EPOCHS = 2048, 8
SAMPLES_SEEN, WARMUP_SAMPLES = EPOCHS * TRAIN_SAMPLES, TRAIN_SAMPLES
# Validation runs this many times per run, once every SAMPLES_SEEN / EVALUATIONS samples whatever
# the batch size; the final loss is the mean of the last FINAL_EVALUATIONS of them.
EVALUATIONS, FINAL_EVALUATIONS = 32, 4
# fix() also trains the largest batch at these multiples of the rule's learning rate.
LARGER_LR_MULTIPLES = (2, 4)


def fixed_learning_rate(batch_size: int) -> float:
    """The same learning rate for every batch size."""
    return REFERENCE_LR


def linear_scaling_learning_rate(batch_size: int) -> float:
    """lr = REFERENCE_LR * k with k = batch_size / REFERENCE_BATCH (Goyal et al. 2017)."""
    return REFERENCE_LR * batch_size / REFERENCE_BATCH


def train_batch_size(batch_size: int, learning_rate: float):
    """One run of the sweep: SAMPLES_SEEN samples at this batch size and learning rate. A learning
    rate above REFERENCE_LR is reached by a linear warmup from REFERENCE_LR over WARMUP_SAMPLES."""
    mg.manual_seed(0)
    # TRAIN_SAMPLES training points, a quarter as many for validation.
    data = mg.data.moons(n_samples=TRAIN_SAMPLES * 5 // 4, noise=0.2, val_fraction=0.2, seed=0)
    model = mlp([2, WIDTH, WIDTH, 2])
    optimizer = mg.optim.SGD(model.parameters(), lr=learning_rate, momentum=MOMENTUM)
    warmup = None
    if learning_rate > REFERENCE_LR:
        warmup = mg.optim.lr_scheduler.LinearLR(optimizer, start_factor=REFERENCE_LR / learning_rate,
                                                total_iters=WARMUP_SAMPLES // batch_size)
    steps = SAMPLES_SEEN // batch_size
    run = train(f"batch {batch_size}, lr {learning_rate:g}", model, data, optimizer, steps, batch_size=batch_size,
                scheduler=warmup, val_every=steps // EVALUATIONS)
    val_loss = run.history["val_loss"]
    run.measurements.update({
        "batch_size": batch_size,
        "lr": learning_rate,
        "steps": steps,
        "final_loss": float(np.mean(val_loss[np.isfinite(val_loss)][-FINAL_EVALUATIONS:])),
    })
    return run


def sweep(learning_rate_for, fast=False) -> dict:
    """{batch size: Run} over the batch sizes, each at learning_rate_for(batch size)."""
    return {batch_size: train_batch_size(batch_size, learning_rate_for(batch_size))
            for batch_size in (FAST_BATCH_SIZES if fast else BATCH_SIZES)}


def table(runs: dict) -> list:
    """One row per run: batch size, learning rate, steps, final loss, final loss over the
    reference batch's, and the doctor's diagnosis."""
    reference = runs[REFERENCE_BATCH].measurements["final_loss"]
    return [{"batch_size": batch_size, "lr": run.measurements["lr"], "steps": run.measurements["steps"],
             "final_loss": round(run.measurements["final_loss"], 4),
             "over_reference": round(run.measurements["final_loss"] / reference, 3),
             "diagnosis": run.report.primary}
            for batch_size, run in runs.items()]


def format_table(rows: list) -> str:
    """The table as text, one line per batch size."""
    over_reference = f"/ batch {REFERENCE_BATCH}"
    lines = [f"{'batch':>5}  {'lr':>7}  {'steps':>5}  {'final loss':>10}  {over_reference:>10}  diagnosis"]
    for row in rows:
        lines.append(f"{row['batch_size']:>5}  {row['lr']:>7.4g}  {row['steps']:>5}  {row['final_loss']:>10.4f}  "
                     f"{row['over_reference']:>10.2f}  {row['diagnosis']}")
    return "\n".join(lines)


def per_evaluation_history(run) -> History:
    """The run's curves at its validation evaluations, with samples seen as the "step" axis: the
    validation loss, and the training loss averaged over the batches since the last evaluation.
    Every batch size is evaluated once every SAMPLES_SEEN / EVALUATIONS samples, so the curves line
    up, and each training-loss point averages as many samples (a batch-8 loss alone is very noisy)."""
    batch_size = run.measurements["batch_size"]
    loss, val_loss = run.history["loss"], run.history["val_loss"]
    evaluated = np.flatnonzero(np.isfinite(val_loss))
    since_last = zip(np.concatenate([[0], evaluated[:-1] + 1]), evaluated + 1)
    return History({"step": (run.history.steps[evaluated] + 1) * batch_size,
                    "loss": [np.mean(loss[start:end]) for start, end in since_last],
                    "val_loss": val_loss[evaluated]})


def comparison(runs: dict):
    """compare_runs of the sweep, on the curves of `per_evaluation_history` (so its "steps" are
    samples seen)."""
    histories = {run.label: per_evaluation_history(run) for run in runs.values()}
    settings = {run.label: {"batch_size": batch_size, "lr": run.measurements["lr"]} for batch_size, run in runs.items()}
    return compare_runs(histories, hyperparameters=settings)


def figure(fixed_runs: dict, scaled_runs: dict, path=None):
    """Loss against samples seen, fixed learning rate (left) and linear scaling (right)."""
    from matplotlib.figure import Figure

    drawing = Figure(figsize=(13, 4.5), layout="constrained")
    titles = (f"fixed lr {REFERENCE_LR:g}", f"linear scaling, lr = {REFERENCE_LR:g} x B / {REFERENCE_BATCH}")
    for ax, runs, title in zip(drawing.subplots(1, 2, sharey=True), (fixed_runs, scaled_runs), titles):
        comparison(runs).plot(ax=ax)
        ax.set_title(title)
        ax.set_xlabel("samples seen")
    if path is not None:
        drawing.savefig(path)
    return drawing


def _largest_batch_run(runs: dict):
    """The run of the largest batch, carrying the sweep's table, its final loss over the reference
    batch's, and the reference run's validation loss after as many steps as this run took."""
    run, reference = runs[max(runs)], runs[REFERENCE_BATCH]
    evaluated = np.flatnonzero(np.isfinite(reference.history["val_loss"]))
    as_many_steps = evaluated[np.argmin(np.abs(reference.history.steps[evaluated] - run.measurements["steps"]))]
    run.measurements.update({
        "reference_final_loss": reference.measurements["final_loss"],
        "final_loss_over_reference": run.measurements["final_loss"] / reference.measurements["final_loss"],
        "reference_loss_after_as_many_steps": float(reference.history["val_loss"][as_many_steps]),
        "table": table(runs),
    })
    return run


def reproduce(fast=False):
    return _largest_batch_run(sweep(fixed_learning_rate, fast))


def fix(fast=False):
    run = _largest_batch_run(sweep(linear_scaling_learning_rate, fast))
    reference = run.measurements["reference_final_loss"]
    larger = [train_batch_size(run.measurements["batch_size"], multiple * run.measurements["lr"]).measurements
              for multiple in LARGER_LR_MULTIPLES]
    run.measurements["larger_lr_runs"] = [
        {"lr": measured["lr"], "final_loss": round(measured["final_loss"], 4),
         "over_reference": round(measured["final_loss"] / reference, 3)} for measured in larger]
    return run


def show(fast=False, path=None) -> None:
    """Print both sweeps' tables and the doctor's advice for the largest batch, and draw the figure."""
    fixed_runs, scaled_runs = sweep(fixed_learning_rate, fast), sweep(linear_scaling_learning_rate, fast)
    for title, runs in (("fixed learning rate", fixed_runs), ("linear scaling rule + warmup", scaled_runs)):
        largest = runs[max(runs)]
        print(f"== {title}\n{format_table(table(runs))}\n-- the doctor on {largest.label}:\n{largest.report}\n")
    if path is not None:
        figure(fixed_runs, scaled_runs, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    import sys

    show(fast="--fast" in sys.argv, path=next((arg for arg in sys.argv[1:] if arg.endswith(".png")), None))
