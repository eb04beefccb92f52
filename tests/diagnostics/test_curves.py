"""Loss-curve rules: each fires on a curve built to show it, at the right step, and no rule fires
on a healthy curve (noisy exponential decay to a floor), whatever the noise, seed and scale."""

import time
import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diagnostics import Finding
from diagnostics import curves
from diagnostics.curves import analyze_curves, smooth_zero_lag, theil_sen_slope

# ---------------------------------------------------------------- curve builders


def noisy(clean, noise, seed, distribution="lognormal"):
    """Minibatch noise is multiplicative: loss x exp(noise N(0, 1)), or x Gamma with cv = noise."""
    rng = np.random.default_rng(seed)
    if distribution == "gamma":
        shape = 1 / noise**2
        return clean * rng.gamma(shape, 1 / shape, len(clean))
    return clean * np.exp(noise * rng.standard_normal(len(clean)))


def decay(t, tau, floor_fraction):
    """1 at t = 0, falling exponentially with time constant tau to floor_fraction."""
    return floor_fraction + (1 - floor_fraction) * np.exp(-t / tau)


def sparse(values, every):
    """Validation every `every` steps and at the last one, NaN elsewhere (the History convention)."""
    out = np.full(len(values), np.nan)
    out[::every] = values[::every]
    out[-1] = values[-1]
    return out


def names(findings):
    return sorted({finding.kind for finding in findings})


seeds = st.integers(0, 2**32 - 1)
noises = st.floats(0.02, 0.3)
scales = st.floats(-3, 3).map(lambda exponent: 10.0**exponent)
lengths = st.sampled_from([1000, 2000])


# ---------------------------------------------------------------- healthy runs: silence


@given(n=st.sampled_from([300, 1000, 2000]), noise=noises, seed=seeds, scale=scales,
       tau_fraction=st.floats(1 / 50, 1 / 8), floor_fraction=st.floats(0.01, 0.2),
       distribution=st.sampled_from(["lognormal", "gamma"]), with_validation=st.booleans())
def test_healthy_run_has_no_findings(n, noise, seed, scale, tau_fraction, floor_fraction, distribution,
                                     with_validation):
    clean = scale * decay(np.arange(n), tau_fraction * n, floor_fraction)
    train = noisy(clean, noise, seed, distribution)
    val = sparse(noisy(1.1 * clean + 0.05 * scale, 0.02, seed + 1), n // 50) if with_validation else None
    findings = analyze_curves(train, val)
    assert findings == [], [str(finding) for finding in findings]


# ---------------------------------------------------------------- one builder per failure
# Each returns (train, val or None, the step where the failure starts, index -> step factor).


def plateau_at_start(n, noise, seed):
    t = np.arange(n)
    flat = n // 3
    return noisy(np.where(t < flat, 1.0, decay(t - flat, n / 20, 0.05)), noise, seed), None, 0


def plateau_then_escape(n, noise, seed):
    # Down to 0.3 by step n/5 (straight in log), flat for n/4 steps, then down again to 0.03.
    t = np.arange(n)
    start, length = n // 5, n // 4
    clean = np.where(t < start, 0.3 ** (t / start),
                     np.where(t < start + length, 0.3, 0.3 * decay(t - start - length, n / 20, 0.1)))
    return noisy(clean, noise, seed), None, start


def slow_steady_decline(n, noise, seed, drop=0.5):
    return noisy(np.exp(-drop * np.arange(n) / n), noise, seed), None, 0


def oscillating(n, noise, seed, swing=0.3):
    t = np.arange(n)
    start = n // 3
    zigzag = np.where(t >= start, swing * (-1.0) ** t, 0.0)
    return noisy(decay(t, n / 10, 0.1) * np.exp(zigzag), noise, seed), None, start


def spiking(n, noise, seed, stays_up=False):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    start = int(rng.integers(n // 2, n // 2 + n // 8))
    clean = decay(t, n / 10, 0.1)
    clean[start:] *= 3 if stays_up else 1  # a spike after which the loss stays 3x higher
    # 20 noise sd: the rule asks for 7 sd of a noise sd that is itself estimated to 10-20 %.
    clean[start:start + int(rng.integers(1, 4))] *= np.exp(max(20 * noise, 0.5))
    return noisy(clean, noise, seed), None, start


def diverging(n, noise, seed):
    # Healthy until 0.8 n, then up by e every 20 steps; it passes 4x its minimum 20 ln 4 steps later.
    t = np.arange(n)
    start = int(0.8 * n)
    clean = decay(t, n / 10, 0.1) * np.exp(np.maximum(t - start, 0) / 20)
    return noisy(clean, noise, seed), None, start + int(20 * np.log(4))


def overfitting(n, noise, seed, val_noise=0.02):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    best = int(rng.integers(n // 3, n // 2))
    train = decay(t, n / 8, 0.01)
    val = 1.2 * train + 0.1
    val = np.where(t < best, val, val[best] * (1 + rng.uniform(0.5, 1.0) * (t - best) / (n - best)))
    return noisy(train, noise, seed), sparse(noisy(val, val_noise, seed + 1), n // 50), best


def double_descent(n, noise, seed, val_noise=0.02):
    # Validation: down to 0.4 at n/4, up 30 % by n/2, down to 0.25 at the end (straight in log).
    t = np.arange(n)
    first, peak = n // 4, n // 2
    val = np.exp(np.interp(t, [0, first, peak, n - 1], np.log([1.0, 0.4, 0.52, 0.25])))
    train = noisy(decay(t, n / 10, 0.01), noise, seed)
    return train, sparse(noisy(val, val_noise, seed + 1), n // 50), peak


BUILDERS = [plateau_at_start, plateau_then_escape, slow_steady_decline, oscillating, spiking, diverging,
            overfitting, double_descent]


# ---------------------------------------------------------------- each rule fires where it should


@given(n=lengths, noise=st.floats(0.02, 0.1), seed=seeds)
def test_plateau_at_the_start(n, noise, seed):
    # Plateaus are only judged where a window could have seen a 10 % change: low enough noise.
    train, _, start = plateau_at_start(n, noise, seed)
    findings = analyze_curves(train)
    assert names(findings) == ["plateau"], [str(finding) for finding in findings]
    # Reported at the first window that passes |t| < 2, which a flat window fails about 5 % of
    # the time: some window lying inside the plateau (the first n/3 steps).
    assert start <= findings[0].step <= n // 3 - n // 10
    assert findings[0].evidence["fraction_of_initial"] >= curves.REMAINING_FRACTION


@given(n=lengths, noise=st.floats(0.02, 0.1), seed=seeds)
def test_plateau_followed_by_escape(n, noise, seed):
    train, _, start = plateau_then_escape(n, noise, seed)
    findings = analyze_curves(train)
    assert names(findings) == ["plateau"], [str(finding) for finding in findings]
    # A window (n/10 steps) that overlaps the start of the plateau or lies inside it.
    assert start - n // 10 <= findings[0].step <= start + n // 4 - n // 10
    assert findings[0].evidence["later_fraction"] <= curves.PLATEAU_ESCAPE_FRACTION


@given(n=lengths, noise=st.floats(0.02, 0.08), seed=seeds, drop=st.floats(0.3, 0.5))
def test_slow_steady_decline_is_lr_too_low_not_plateau(n, noise, seed, drop):
    # Ends at 61-74 % of its initial loss, clear of the 50 % "far from done" line; at this noise
    # each third's slope has t <= -6, clear of -2.
    train, _, start = slow_steady_decline(n, noise, seed, drop)
    findings = analyze_curves(train)
    assert "lr_too_low" in names(findings) and "plateau" not in names(findings), [str(f) for f in findings]
    assert [f.step for f in findings if f.kind == "lr_too_low"] == [start]


@given(n=lengths, seed=seeds, swing=st.floats(0.15, 0.4), relative_noise=st.floats(0.1, 0.5))
def test_oscillation_found_where_it_starts(n, seed, swing, relative_noise):
    train, _, start = oscillating(n, relative_noise * swing, seed, swing)
    findings = analyze_curves(train)
    assert names(findings) == ["oscillation"], [str(finding) for finding in findings]
    window = max(curves.OSCILLATION_MIN_WINDOW, n // 10)
    assert abs(findings[0].step - start) <= window


@given(n=lengths, noise=noises, seed=seeds)
def test_spike_that_recovers(n, noise, seed):
    train, _, start = spiking(n, noise, seed)
    findings = analyze_curves(train)
    assert names(findings) == ["loss_spike"], [str(finding) for finding in findings]
    assert findings[0].step == start
    assert findings[0].evidence["recovered"] is True
    assert findings[0].evidence["z"] > curves.SPIKE_Z


@given(n=lengths, noise=noises, seed=seeds)
def test_spike_that_leaves_the_loss_higher_did_not_recover(n, noise, seed):
    train, _, start = spiking(n, noise, seed, stays_up=True)
    first = [finding for finding in analyze_curves(train) if finding.kind == "loss_spike"][0]
    assert first.step == start
    assert first.evidence["recovered"] is False
    assert first.severity == "warning"


def test_spike_near_the_end_cannot_be_judged_for_recovery():
    clean = decay(np.arange(1000), 100, 0.1)
    clean[900:902] *= 20
    clean[902:] *= 3
    spikes = curves.detect_spikes(noisy(clean, 0.05, 0))
    assert [(spike.step, spike.evidence["recovered"]) for spike in spikes] == [(900, None)]


@given(n=lengths, noise=noises, seed=seeds, step_size=st.sampled_from([1, 10]))
def test_divergence_found_where_the_loss_passes_4x_its_minimum(n, noise, seed, step_size):
    train, _, crossing = diverging(n, noise, seed)
    findings = analyze_curves(train, steps=step_size * np.arange(n))
    assert names(findings) == ["divergence"], [str(finding) for finding in findings]
    assert abs(findings[0].step - step_size * crossing) <= step_size * curves.DIVERGENCE_WINDOW


@given(n=lengths, seed=seeds)
def test_run_ending_in_nan_is_non_finite_at_the_first_nan(n, seed):
    train, _, _ = diverging(n, 0.1, seed)
    first_nan = n - 20
    train[first_nan:] = np.nan
    findings = analyze_curves(train)
    assert names(findings) == ["divergence", "non_finite"]
    assert [f.step for f in findings if f.kind == "non_finite"] == [first_nan]


def test_inf_is_non_finite_but_interleaved_nan_is_a_missing_record():
    train = noisy(decay(np.arange(1000), 100, 0.1), 0.1, 0)
    train[1::2] = np.nan  # the loss logged every other step
    assert analyze_curves(train) == []
    train[500] = np.inf
    assert [(f.kind, f.step) for f in analyze_curves(train)] == [("non_finite", 500)]


@given(n=lengths, noise=noises, seed=seeds, val_noise=st.floats(0.005, 0.02))
def test_overfitting_step_is_the_validation_minimum(n, noise, seed, val_noise):
    train, val, best = overfitting(n, noise, seed, val_noise)
    findings = analyze_curves(train, val)
    assert names(findings) == ["overfitting"], [str(finding) for finding in findings]
    # Validation runs every n/50 steps and rises slowly after its minimum: noise moves the best
    # evaluation a little.
    assert abs(findings[0].step - best) <= n // 10
    assert findings[0].evidence["stop_step"] == findings[0].step


@given(n=lengths, noise=noises, seed=seeds, val_noise=st.floats(0.005, 0.03))
def test_double_descent_finds_the_second_descent(n, noise, seed, val_noise):
    train, val, peak = double_descent(n, noise, seed, val_noise)
    findings = analyze_curves(train, val)
    assert names(findings) == ["double_descent"], [str(finding) for finding in findings]
    evidence = findings[0].evidence
    # As for overfitting: validation every n/50 steps, and the rise after the first minimum is slow.
    assert abs(findings[0].step - peak) <= n // 10
    assert abs(evidence["first_minimum_step"] - n // 4) <= n // 10
    assert evidence["second_minimum_step"] >= 0.9 * n


@given(n=lengths, noise=noises, seed=seeds, scale=scales)
def test_underfitting_when_training_loss_stays_near_its_initial_value(n, noise, seed, scale):
    train = noisy(scale * (1 - 0.1 * (1 - np.exp(-np.arange(n) / (n / 10)))), noise, seed)
    findings = analyze_curves(train, initial_loss=scale)
    underfitting = [finding for finding in findings if finding.kind == "underfitting"]
    assert [finding.step for finding in underfitting] == [0], [str(finding) for finding in findings]
    assert underfitting[0].evidence["fraction_of_initial"] >= curves.UNDERFIT_NEAR_INITIAL


@given(n=lengths, noise=st.floats(0.02, 0.1), seed=seeds, val_ratio=st.sampled_from([1.03, 1.5]))
def test_underfitting_when_train_and_validation_are_both_high_and_close(n, noise, seed, val_ratio):
    clean = decay(np.arange(n), n / 10, 0.6)
    val = sparse(noisy(val_ratio * clean, 0.01, seed + 1), n // 50)
    kinds = names(analyze_curves(noisy(clean, noise, seed), val))
    # Close (3 % apart) is underfitting; far apart (50 %) is not: the model fits training data better.
    assert ("underfitting" in kinds) == (val_ratio < 1 + curves.UNDERFIT_MAX_GAP), kinds


# ---------------------------------------------------------------- properties of every rule


@given(builder=st.sampled_from(BUILDERS), n=lengths, noise=st.floats(0.02, 0.1), seed=seeds,
       factor=st.floats(-4, 4).map(lambda exponent: 10.0**exponent))
def test_multiplying_the_loss_changes_no_finding(builder, n, noise, seed, factor):
    train, val, _ = builder(n, noise, seed)
    before = [(f.kind, f.step) for f in analyze_curves(train, val)]
    after = [(f.kind, f.step) for f in analyze_curves(factor * train, None if val is None else factor * val)]
    assert before == after
    assert before  # the builder did build a failure


floats_anything = st.floats(allow_nan=True, allow_infinity=True)


@given(data=st.data(), length=st.integers(0, 120))
@example(data=None, length=0)
def test_odd_input_never_raises(data, length):
    if data is None:  # the explicit examples below, then hypothesis' arrays
        cases = [([], None, None), ([1.0], [np.nan], None), ([np.nan] * 10, None, None),
                 ([2.0] * 100, [2.0] * 100, None), ([0.0] * 50, None, None), ([np.inf] * 3, None, None),
                 (np.linspace(-5, 5, 80), np.linspace(5, -5, 80), None), ([1e308, -1e308, 5e-324] * 30, None, None),
                 ([3.0, 2.0, 1.0] * 20, None, [7.0] * 60)]
    else:
        train = data.draw(arrays(np.float64, length, elements=floats_anything))
        val = data.draw(st.none() | arrays(np.float64, length, elements=floats_anything))
        steps = data.draw(st.none() | arrays(np.float64, length, elements=floats_anything))
        cases = [(train, val, steps)]
    for train, val, steps in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no RuntimeWarning from NumPy either
            findings = analyze_curves(train, val, steps)
            for rule in (curves.detect_non_finite, curves.detect_divergence, curves.detect_spikes,
                         curves.detect_oscillation, curves.detect_plateau, curves.detect_lr_too_low,
                         curves.detect_double_descent):
                findings += rule(train, steps)
            findings += curves.detect_underfitting(train, val, steps) + curves.detect_overfitting(train, train, steps)
            smooth_zero_lag(train, 0.9)
            theil_sen_slope(np.arange(len(train)) if steps is None else steps, train)
        assert all(isinstance(finding, Finding) for finding in findings)
        for finding in findings:
            finding.to_dict()


def test_unknown_keyword_is_an_error_and_thresholds_can_be_overridden():
    train, _, start = spiking(1000, 0.05, 0)
    with pytest.raises(ValueError, match="spikez"):
        analyze_curves(train, spikez=8)
    assert names(analyze_curves(train)) == ["loss_spike"]
    assert analyze_curves(train, spike_z=1e6) == []


def test_every_public_constant_is_a_keyword_of_analyze_curves():
    # The doctor passes any lower-case constant name through; each must be accepted, and its
    # default value must change nothing.
    constants = {name.lower(): value for name, value in vars(curves).items()
                 if name.isupper() and not name.startswith("_")}
    train, val, _ = overfitting(1000, 0.05, 0)
    assert analyze_curves(train, val, **constants) == analyze_curves(train, val) != []


def test_long_curve_is_fast():
    n = 100_000
    clean = decay(np.arange(n), n / 20, 0.05)
    train, val = noisy(clean, 0.2, 0), sparse(noisy(1.1 * clean, 0.02, 1), 500)
    started = time.process_time()  # CPU time: a busy machine does not fail the test
    analyze_curves(train, val)
    assert time.process_time() - started < 2.0


# ---------------------------------------------------------------- the smoother and the slope


@given(width=st.floats(1.0, 10.0), beta=st.floats(0.6, 0.95), data=st.data())
def test_smooth_zero_lag_keeps_a_symmetric_bump_in_place(width, beta, data):
    # Within about 1 / (1 - beta) entries of an end the smoother sees one side only, so keep the
    # bump further in: beyond where beta^distance < 1e-6, plus 5 widths.
    margin = int(np.log(1e-6) / np.log(beta) + 5 * width)
    n = 2 * margin + data.draw(st.integers(1, 200))
    centre = data.draw(st.integers(margin, n - margin))
    bump = 1.0 + np.exp(-0.5 * ((np.arange(n) - centre) / width) ** 2)
    assert int(np.argmax(smooth_zero_lag(bump, beta))) == centre
    causal, ema = np.zeros(n), 0.0
    for t, value in enumerate(bump):  # the usual (bias-corrected) EMA, for contrast: its peak comes later
        ema = beta * ema + (1 - beta) * value
        causal[t] = ema / (1 - beta ** (t + 1))
    assert int(np.argmax(causal)) > centre


@given(value=st.floats(-1e6, 1e6), n=st.integers(1, 50), beta=st.floats(0.0, 0.99))
def test_smooth_zero_lag_keeps_a_constant_up_to_the_ends(value, n, beta):
    assert np.allclose(smooth_zero_lag(np.full(n, value), beta), value)


def test_smooth_zero_lag_skips_missing_values():
    # (1 + 0.25 * 3) / 1.25, (0.5 + 1.5) / 1, (0.25 + 3) / 1.25
    assert np.allclose(smooth_zero_lag([1.0, np.nan, 3.0], 0.5), [1.4, 2.0, 2.6])
    assert np.isnan(smooth_zero_lag([np.nan, np.nan], 0.5)).all()
    assert np.array_equal(smooth_zero_lag([4.0, 1.0, 7.0], 0.0), [4.0, 1.0, 7.0])
    with pytest.raises(ValueError, match="beta"):
        smooth_zero_lag([1.0], 1.0)


@given(slope=st.floats(-10, 10), intercept=st.floats(-10, 10), seed=seeds, n=st.integers(10, 2000))
def test_theil_sen_slope_ignores_a_quarter_of_wild_points(slope, intercept, seed, n):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 100, n))
    y = slope * x + intercept
    assert theil_sen_slope(x, y) == pytest.approx(slope, abs=1e-9)
    wild = rng.choice(n, n // 4, replace=False)
    y[wild] += rng.uniform(1e3, 1e6, len(wild))
    assert abs(theil_sen_slope(x, y) - slope) < 0.2 * abs(slope) + 0.5
    assert np.isnan(theil_sen_slope([1.0, 1.0], [2.0, 3.0]))
