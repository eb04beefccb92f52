"""Figures of a training run: loss curves, gradient flow, update ratios, activation health, the
LR range test, and a one-page dashboard of a doctor's report.

    plot_loss(rec.history, report.findings, path="loss.png")
    plot_report(diagnose(rec), path="report.png")

Every function takes a History (or a Recorder, or a dict of columns), draws what the run
recorded, saves the figure to `path` when one is given (the format follows the extension:
.png, .svg, .pdf) and returns the matplotlib Figure. Functions with an `ax` argument draw into
that Axes instead of a new figure, so they can be combined. Missing columns, NaN-only columns, a
single step or an empty history do not raise: the panel shows what is there, or a note saying
what is missing.

matplotlib is imported inside the functions, so importing the diagnostics costs nothing when no
figure is drawn. Figures are built with the object-oriented API (`Figure`, `fig.savefig`), never
pyplot: no window, no backend to configure, no global state, safe on a headless machine.
"""

from __future__ import annotations

import itertools
import textwrap

import numpy as np

from diagnostics import activations, gradients
from diagnostics.doctor import FAILURE_SIGNATURES, as_history
from diagnostics.gradients import weight_layers

# CS231n's rule of thumb: an update/weight ratio near 1e-3 is healthy; gradients.py flags a
# layer outside [UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH].
UPDATE_RATIO_TARGET = 1e-3
# Screen resolution: a dashboard is about 1200 x 1000 pixels and well under 1 MB as PNG.
DPI = 100
SEVERITY_COLORS = {"info": "tab:gray", "warning": "tab:orange", "critical": "tab:red"}
# One marker per LR-finder suggestion method, so the methods stay apart in black and white too.
SUGGESTION_MARKERS = {"steep": "v", "valley": "o", "minimum": "s", "slide": "D"}
OTHER_MARKERS = ("^", "P", "X", "*", "h")
_CAUSE_TITLES = {cause.kind: cause.title for cause in FAILURE_SIGNATURES}


# ---------------------------------------------------------------- shared helpers


def _figure(ax, figsize):
    """A new figure with one Axes, or the figure of the given Axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _finish(figure, path, dpi: int = DPI):
    """Save to `path` when given; return the figure."""
    if path is not None:
        figure.savefig(path, dpi=dpi)
    return figure


def _note(ax, text: str) -> None:
    """A grey note in the middle of a panel that has nothing (or not everything) to show."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="tab:gray")


def _finite(values) -> np.ndarray:
    """The values as floats with every non-finite entry turned into NaN (a gap in a line)."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def _positive(values) -> np.ndarray:
    """The values with every entry a log axis cannot show (<= 0, NaN, Inf) turned into NaN."""
    values = _finite(values)
    with np.errstate(invalid="ignore"):
        return np.where(values > 0, values, np.nan)


def _has_data(values) -> bool:
    return values is not None and bool(np.isfinite(values).any())


def _x_axis(history) -> tuple[np.ndarray, str]:
    """The recorded step numbers when they increase strictly, else the row numbers (a log whose
    step column repeats, as an epoch column does, would fold the curves back on themselves).
    A history whose "step" is something else (a sweep over model size) names it in its
    metadata: {"x_label": "model size p"}."""
    steps = np.asarray(history.steps, dtype=np.float64)
    if len(steps) and np.isfinite(steps).all() and np.all(np.diff(steps) > 0):
        return steps, str(getattr(history, "metadata", {}).get("x_label", "step"))
    return np.arange(len(history), dtype=np.float64), "recorded row"


def _plot_series(ax, x, y, **style):
    """A line with a gap at each NaN; a lone finite point gets a marker so that it shows."""
    if np.isfinite(y).sum() == 1 and "marker" not in style:
        style["marker"] = "o"
    return ax.plot(x, y, **style)


def _legend(ax, **options) -> None:
    """A legend when something is labelled (an empty legend warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", **options)


# ---------------------------------------------------------------- loss


def plot_loss(history, findings=(), path=None, ax=None):
    """Training loss (a line) and validation loss (its finite points, with markers) over steps.

    The y axis is logarithmic when every loss is positive and they span more than a decade
    (max / min > 10), so that the late, slow part of the curve stays visible. Each finding that
    has a step is drawn as a vertical line at that step, coloured by severity and labelled with
    its kind; findings at the same step share one line.
    """
    history = as_history(history)[0]
    figure, ax = _figure(ax, (7, 4))
    x, x_label = _x_axis(history)
    drawn = []
    train = history.get("loss")
    if _has_data(train):
        _plot_series(ax, x, _finite(train), label="train loss", linewidth=1)
        drawn.append(_finite(train))
    validation = history.get("val_loss")
    if _has_data(validation):
        evaluated = np.isfinite(validation)
        ax.plot(x[evaluated], validation[evaluated], marker="o", markersize=3, label="validation loss")
        drawn.append(validation[evaluated])
    if not drawn:
        _note(ax, "no loss recorded")
    else:
        values = np.concatenate(drawn)
        values = values[np.isfinite(values)]
        if values.min() > 0 and values.max() / values.min() > 10:
            ax.set_yscale("log")
            if _has_data(validation):
                # A training loss at round-off level (an interpolating fit: 1e-29) would squash
                # the validation curve into a line: keep the axis within 6 decades of it.
                floor = float(np.nanmin(validation[np.isfinite(validation)])) * 1e-6
                ax.set_ylim(bottom=max(values.min(), floor) / 2)
    if str(getattr(history, "metadata", {}).get("x_scale", "")) == "log" and len(x) and x.min() > 0:
        ax.set_xscale("log")
    _mark_findings(ax, findings, history, x)
    ax.set_xlabel(x_label)
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    _legend(ax)
    return _finish(figure, path)


def _mark_findings(ax, findings, history, x) -> None:
    """Vertical lines at the steps of the findings, labelled with their kinds."""
    by_step: dict[int, list] = {}
    for finding in findings:
        if finding.step is not None:
            by_step.setdefault(finding.step, []).append(finding)
    steps = np.asarray(history.steps, dtype=np.float64)
    for step, group in sorted(by_step.items()):
        position = _position_of_step(step, steps, x)
        worst = max(group, key=lambda finding: finding.rank)
        color = SEVERITY_COLORS[worst.severity]
        kinds = ", ".join(dict.fromkeys(finding.kind for finding in group))
        ax.axvline(position, color=color, linestyle=":", linewidth=1.2)
        ax.annotate(kinds, xy=(position, 0.98), xycoords=("data", "axes fraction"), xytext=(-2, 0),
                    textcoords="offset points", rotation=90, ha="right", va="top", fontsize="x-small",
                    color=color)


def _position_of_step(step, steps, x) -> float:
    """Where a step sits on the x axis (the axis may count rows instead of steps)."""
    matches = np.flatnonzero(steps == step)
    return float(x[matches[0]]) if matches.size else float(step)


# ---------------------------------------------------------------- gradient flow


def plot_gradient_flow(history, path=None, step=None, axes=None):
    """Per-layer gradient norms: a heatmap over steps, and bars at one step, side by side.

    Heatmap: one row per layer (input at the top, output at the bottom, the order of
    named_parameters), one column per recorded step, colour = log10 ||g_layer||. Grey cells are
    zero, NaN/Inf or not recorded. Vanishing gradients show as rows that darken toward the input;
    exploding ones as columns that brighten. Bars: ||g_layer|| at `step` (a recorded step number;
    default the last step with a recorded gradient) on a log axis, rows aligned with the heatmap.
    Weights only, when there are any (biases have their own, smaller scale). A log with only the
    global gradient norm (the `grad_norm` column) gets that norm over steps instead of the heatmap.

    axes: a pair of Axes (heatmap, bars) to draw into instead of a new figure.
    """
    history = as_history(history)[0]
    if axes is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 4), dpi=DPI, layout="constrained")
        heatmap_ax, bars_ax = figure.subplots(1, 2, width_ratios=(3, 1))
    else:
        heatmap_ax, bars_ax = axes
        figure = heatmap_ax.figure
    layers = {name: values for name, values in weight_layers(history).items() if _has_data(values)}
    if not layers and _has_data(history.get("grad_norm")):
        _draw_global_gradient_norm(heatmap_ax, history)
    else:
        _draw_gradient_heatmap(heatmap_ax, history, layers)
    _draw_gradient_bars(bars_ax, history, layers, step)
    return _finish(figure, path)


def _draw_global_gradient_norm(ax, history) -> None:
    """||g|| of all parameters together over steps, log axis, with the line above which
    gradients.py calls it exploding."""
    x, x_label = _x_axis(history)
    norm = _positive(history["grad_norm"])
    if _has_data(norm):
        _plot_series(ax, x, norm, linewidth=1, label="||grad||")
        ax.set_yscale("log")
    else:
        _note(ax, "every gradient norm is zero or non-finite")
    ax.axhline(gradients.EXPLODING_NORM, color="tab:red", linestyle=":", linewidth=1,
               label=f"exploding > {gradients.EXPLODING_NORM:g}")
    ax.set_title("Gradient norm (all parameters)")
    ax.set_xlabel(x_label)
    _legend(ax)


def _draw_gradient_heatmap(ax, history, layers: dict) -> None:
    ax.set_title("Gradient norm per layer (log10)")
    if not layers:
        _note(ax, "no per-layer gradient norms recorded")
        return
    x, x_label = _x_axis(history)
    raw = np.array([np.asarray(values, dtype=np.float64) for values in layers.values()])
    norms = np.array([_positive(values) for values in layers.values()])
    log_norms = np.ma.masked_invalid(np.log10(norms))
    if log_norms.mask.all() and not (raw == 0).any():
        _note(ax, "every gradient norm is non-finite")
    else:
        import matplotlib

        # Exactly-zero gradients (dead units, cut graphs) are drawn black, below the colour scale;
        # NaN/Inf and unrecorded steps grey.
        finite_logs = log_norms.compressed()
        low = float(finite_logs.min()) if finite_logs.size else 0.0
        shown = np.ma.where(raw == 0, low - 1.0, log_norms)
        colormap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgray", under="black")
        mesh = ax.pcolormesh(_cell_edges(x), np.arange(len(layers) + 1) - 0.5, shown, cmap=colormap,
                             vmin=low, vmax=max(float(finite_logs.max()) if finite_logs.size else low, low + 1e-9))
        extend = "min" if (raw == 0).any() else "neither"
        label = "log10 ||grad|| (black: exactly 0)" if extend == "min" else "log10 ||grad||"
        ax.figure.colorbar(mesh, ax=ax, label=label, extend=extend)
    ax.set_yticks(np.arange(len(layers)), list(layers), fontsize="small")
    ax.set_ylim(len(layers) - 0.5, -0.5)
    ax.set_xlabel(x_label)


def _cell_edges(centers: np.ndarray) -> np.ndarray:
    """Edges of cells centred on increasing x values: midpoints inside, half a gap outside."""
    if len(centers) == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    middle = (centers[1:] + centers[:-1]) / 2
    return np.concatenate([[2 * centers[0] - middle[0]], middle, [2 * centers[-1] - middle[-1]]])


def _draw_gradient_bars(ax, history, layers: dict, step) -> None:
    if not layers:
        ax.set_title("Gradient norm at one step")
        _note(ax, "no per-layer gradient norms recorded")
        return
    row = _row_of_step(history, layers, step)
    step_label = int(history.steps[row]) if np.isfinite(history.steps[row]) else row
    ax.set_title(f"At step {step_label}")
    names = list(layers)
    values = np.array([layers[name][row] for name in names])
    drawable = np.isfinite(values) & (values > 0)
    positions = np.arange(len(names))
    ax.barh(positions[drawable], values[drawable], color="tab:blue")
    for position, value in zip(positions[~drawable], values[~drawable]):
        ax.text(0.02, position, f"{value:g}", transform=ax.get_yaxis_transform(), va="center",
                fontsize="small", color="tab:red")
    if drawable.any():
        ax.set_xscale("log")
        ax.set_xlim(*_decade_bounds(values[drawable]))
        # Minor-tick labels of a short log axis print on top of each other.
        from matplotlib.ticker import NullFormatter

        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(positions, names, fontsize="small")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel("||grad||")


def _decade_bounds(values: np.ndarray) -> tuple[float, float]:
    """Powers of ten around positive values, at least one decade apart. A bar on a log axis
    starts at the left bound, which lies below half the smallest value, so every bar shows."""
    low = 10.0 ** np.floor(np.log10(values.min() / 2))
    high = 10.0 ** np.ceil(np.log10(values.max()))
    return low, max(high, 10 * low)


def _row_of_step(history, layers: dict, step) -> int:
    """The row of a recorded step; by default the last row with any finite gradient norm."""
    if step is None:
        recorded = np.any([np.isfinite(values) for values in layers.values()], axis=0)
        return int(np.flatnonzero(recorded)[-1])
    matches = np.flatnonzero(history.steps == step)
    if not matches.size:
        steps = history.steps
        raise ValueError(f"plot_gradient_flow: step {step} was not recorded; the recorded steps run "
                         f"from {steps[0]:g} to {steps[-1]:g} ({len(steps)} steps)")
    return int(matches[0])


# ---------------------------------------------------------------- update ratios


def plot_update_ratios(history, path=None, ax=None):
    """||theta_t - theta_(t-1)|| / ||theta_(t-1)|| per layer over steps, on a log axis.

    The band [1e-4, 1e-2] that gradients.py calls healthy is shaded, 1e-3 (CS231n's rule of
    thumb) is dashed. A layer far below the band barely learns; far above, its learning rate is
    too high. Weights only, when there are any.
    """
    history = as_history(history)[0]
    figure, ax = _figure(ax, (7, 4))
    x, x_label = _x_axis(history)
    ax.axhspan(gradients.UPDATE_RATIO_LOW, gradients.UPDATE_RATIO_HIGH, color="tab:green", alpha=0.12,
               label=f"healthy [{gradients.UPDATE_RATIO_LOW:g}, {gradients.UPDATE_RATIO_HIGH:g}]")
    ax.axhline(UPDATE_RATIO_TARGET, color="tab:green", linestyle="--", linewidth=1,
               label=f"target {UPDATE_RATIO_TARGET:g}")
    ratios = weight_layers(history, "update_ratio")
    drawable = {name: _positive(values) for name, values in ratios.items() if _has_data(_positive(values))}
    for name, values in drawable.items():
        _plot_series(ax, x, values, label=name, linewidth=1)
    if not drawable:
        _note(ax, "no update ratios recorded" if not ratios else "every update ratio is zero or non-finite")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("update / weight")
    ax.set_title("Update-to-weight ratio per layer")
    _legend(ax, ncols=2)
    return _finish(figure, path)


# ---------------------------------------------------------------- activations


def plot_activation_health(history, path=None, ax=None):
    """Fraction of dead units per ReLU-family layer (solid) and of soft-saturated outputs
    (f'(x) < 0.02) per tanh/sigmoid layer (dashed) over steps, on 0..1, with the 50 % line above
    which activations.py flags a layer."""
    history = as_history(history)[0]
    figure, ax = _figure(ax, (7, 4))
    x, x_label = _x_axis(history)
    dead = {name: v for name, v in history.layers("act_dead_frac").items() if _has_data(v)}
    saturated = {name: v for name, v in history.layers("act_sat_soft").items() if _has_data(v)}
    for name, values in dead.items():
        _plot_series(ax, x, _finite(values), label=f"{name} dead", linewidth=1.2)
    for name, values in saturated.items():
        _plot_series(ax, x, _finite(values), label=f"{name} saturated", linewidth=1.2, linestyle="--")
    for threshold in sorted({activations.DEAD_LAYER_FRACTION, activations.SATURATED_LAYER_FRACTION}):
        ax.axhline(threshold, color="tab:red", linestyle=":", linewidth=1, label=f"{threshold:.0%} threshold")
    if not dead and not saturated:
        _note(ax, "no dead-unit or saturation fractions recorded")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(x_label)
    ax.set_ylabel("fraction")
    ax.set_title("Activation health")
    _legend(ax)
    return _finish(figure, path)


# ---------------------------------------------------------------- LR range test


def plot_lr_finder(history, suggestions=None, path=None, ax=None):
    """Loss against learning rate from an LR range test, log x axis.

    history:     LRFinder.history: {"lr": ..., "loss": raw losses, "smoothed": zero-lag smoothed
                 losses, ...}. The raw loss is drawn light, the smoothed one dark.
    suggestions: {method: lr} (LRFinder.suggestions()); each gets its own marker on the smoothed
                 curve and a label with its value. Non-finite or non-positive LRs are skipped.
    """
    figure, ax = _figure(ax, (7, 4))
    learning_rates = _positive(history.get("lr", np.zeros(0)))
    raw = _finite(history.get("loss", np.full(len(learning_rates), np.nan)))
    smoothed = _finite(history.get("smoothed", np.full(len(learning_rates), np.nan)))
    if not _has_data(learning_rates) or not (_has_data(raw) or _has_data(smoothed)):
        _note(ax, "no LR range test recorded")
    else:
        ax.plot(learning_rates, raw, color="tab:blue", alpha=0.3, linewidth=1, label="loss")
        _plot_series(ax, learning_rates, smoothed, color="tab:blue", linewidth=1.8, label="smoothed loss")
        ax.set_xscale("log")
        curve = smoothed if _has_data(smoothed) else raw
        _mark_suggestions(ax, suggestions or {}, learning_rates, curve)
        ax.set_ylim(*_lr_finder_loss_range(raw, curve))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("LR range test")
    _legend(ax)
    return _finish(figure, path)


def _lr_finder_loss_range(raw, curve) -> tuple[float, float]:
    """The y range: all of the curve and the lowest 95 % of the raw losses, plus a margin. The
    last steps of a range test blow up, and one exploding batch would flatten the rest."""
    curve, raw = curve[np.isfinite(curve)], raw[np.isfinite(raw)]
    bottom = min(curve.min(), raw.min(initial=np.inf))
    top = max(curve.max(), np.percentile(raw, 95) if raw.size else -np.inf)
    margin = 0.05 * (top - bottom)
    if margin == 0:  # a flat curve: a margin around its level
        margin = 0.05 * abs(top) or 1.0
    return bottom - margin, top + margin


def _mark_suggestions(ax, suggestions: dict, learning_rates, curve) -> None:
    """A marker per suggestion, on the curve at its LR (interpolated in log LR)."""
    known = np.isfinite(learning_rates) & np.isfinite(curve)
    if not known.any():
        return
    log_lr, values = np.log10(learning_rates[known]), curve[known]
    order = np.argsort(log_lr)
    other_markers = itertools.cycle(OTHER_MARKERS)
    for method, lr in suggestions.items():
        if lr is None or not np.isfinite(lr) or lr <= 0:
            continue
        marker = SUGGESTION_MARKERS.get(method) or next(other_markers)
        loss_at_lr = np.interp(np.log10(lr), log_lr[order], values[order])
        ax.plot([lr], [loss_at_lr], marker=marker, markersize=8, linestyle="none", label=f"{method}: {lr:.2g}")


# ---------------------------------------------------------------- run comparison


def plot_comparison(comparison, path=None, ax=None):
    """The training loss of every run in a `compare_runs` result on one axis (log scale when the
    losses span more than a decade), validation loss dashed in the same colour, and each run's
    best point (lowest validation loss, else lowest training loss) marked with a star."""
    figure, ax = _figure(ax, (7, 4))
    drawn = []
    for summary in comparison.summaries:
        history = comparison.histories[summary.name]
        steps = np.asarray(history.steps, dtype=np.float64)
        train = history.get("loss")
        if not _has_data(train):
            continue
        (line,) = ax.plot(steps, train, linewidth=1, label=summary.name)
        drawn.append(_finite(train))
        validation = history.get("val_loss")
        best_curve = train
        if _has_data(validation):
            evaluated = np.isfinite(validation)
            ax.plot(steps[evaluated], validation[evaluated], linestyle="--", linewidth=1, color=line.get_color())
            drawn.append(validation[evaluated])
            best_curve = validation
        best = int(np.nanargmin(np.where(np.isfinite(best_curve), best_curve, np.nan)))
        ax.plot(steps[best], best_curve[best], marker="*", markersize=10, color=line.get_color())
    if not drawn:
        _note(ax, "no loss recorded")
    else:
        values = np.concatenate(drawn)
        values = values[np.isfinite(values)]
        if values.size and values.min() > 0 and values.max() / values.min() > 10:
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (train solid, validation dashed)")
    ax.set_title(f"Runs compared (best point starred; ranked by {comparison.ranked_by})")
    _legend(ax)
    return _finish(figure, path)


# ---------------------------------------------------------------- dashboard


def plot_report(report, path=None, dpi: int = DPI):
    """One page with every panel the report's history has data for: the loss with the findings
    marked, gradient flow (heatmap and bars; or the global gradient norm when the run logged no
    per-layer norms), then update ratios and activation health side by side. The title is the
    diagnosis and the first recommendation. `dpi` sets the saved image's resolution."""
    from matplotlib.figure import Figure

    history = report.history
    rows = _dashboard_rows(history)
    figure = Figure(figsize=(12, 1.2 + 3.4 * max(len(rows), 1)), dpi=DPI, layout="constrained")
    grid = figure.add_gridspec(max(len(rows), 1), 4)
    if not rows:
        _note(figure.add_subplot(grid[0, :]), "nothing was recorded")
    for row, panels in enumerate(rows):
        if panels == ["gradient_flow"]:
            plot_gradient_flow(history, axes=(figure.add_subplot(grid[row, :3]), figure.add_subplot(grid[row, 3])))
            continue
        width = 4 // len(panels)  # the row's panels share its four columns
        for column, panel in enumerate(panels):
            ax = figure.add_subplot(grid[row, column * width:(column + 1) * width])
            if panel == "loss":
                plot_loss(history, report.findings, ax=ax)
            elif panel == "gradient_norm":
                _draw_global_gradient_norm(ax, history)
            elif panel == "update_ratios":
                plot_update_ratios(history, ax=ax)
            else:
                plot_activation_health(history, ax=ax)
    figure.suptitle(_diagnosis_title(report), fontsize="large")
    return _finish(figure, path, dpi)


def _dashboard_rows(history) -> list[list[str]]:
    """The panels with something to draw, row by row."""
    rows = []
    if _has_data(history.get("loss")) or _has_data(history.get("val_loss")):
        rows.append(["loss"])
    if any(_has_data(values) for values in weight_layers(history).values()):
        rows.append(["gradient_flow"])
    elif _has_data(history.get("grad_norm")):
        rows.append(["gradient_norm"])
    last_row = []
    if any(_has_data(_positive(values)) for values in weight_layers(history, "update_ratio").values()):
        last_row.append("update_ratios")
    activation_columns = [*history.layers("act_dead_frac").values(), *history.layers("act_sat_soft").values()]
    if any(_has_data(values) for values in activation_columns):
        last_row.append("activation_health")
    if last_row:
        rows.append(last_row)
    return rows


def _diagnosis_title(report) -> str:
    if report.healthy:
        title = "Diagnosis: healthy" + ("" if report.findings else " (no rule fired)")
    else:
        title = f"Diagnosis: {_CAUSE_TITLES.get(report.primary, report.primary)} [{report.primary}]"
    if report.recommendations:
        title += "\n" + textwrap.fill(f"First: {report.recommendations[0].text}", width=110)
    return title
