"""Double descent: test error against model size peaks where the model can just interpolate the data.

This experiment is a sweep, not a training run: each point is a separate model, and the
History's "step" axis is the model size p (the number of random features). The engine plays no
part; the phenomenon is about least squares, so NumPy's SVD solves each model in closed form
(Belkin et al. 2019, "Reconciling modern machine-learning practice and the classical
bias-variance trade-off"; Hastie et al. 2019, "Surprises in high-dimensional ridgeless least
squares interpolation").

Data: n = 100 training points from a linear teacher in 20 dimensions, with label noise of
standard deviation 0.25 (`minigrad.data.teacher_student`); the test error is measured against the
noiseless teacher on 2000 fresh points. Model of size p: random ReLU features
phi(x) = relu(W x) / sqrt(p), W of shape (p, 20) with N(0, 1/20) entries drawn once (the model
of size p uses the first p rows), and a linear fit a on top, prediction phi(x) . a. With the
feature matrix Phi (n x p) = U diag(s) V^T, the fit that minimizes
(1/n) ||Phi a - y||^2 + lambda ||a||^2 is

    a = V diag(s / (s^2 + n lambda)) U^T y;     lambda = 0: a = pinv(Phi) y.

With lambda = 0 it is least squares while p < n, and for p > n, where infinitely many a fit the
training data exactly, the one of minimum norm. Near p = n the smallest singular value s_min of
Phi goes to 0 and the noise in y is divided by it: the coefficients, and the test error, blow up.
For isotropic Gaussian features the noise's share of the test error is sigma^2 p / (n - p - 1)
below the threshold and sigma^2 n / (p - n - 1) above it (Hastie et al. 2019; Belkin, Hsu & Xu
2019): infinite at p = n, and falling again as p grows, because the minimum-norm fit spreads the
noise thinly over more and more directions. So the test error falls (more features fit the
teacher better), rises to a peak at the interpolation threshold p = n, and falls a second time,
below its first minimum. (The training error reaches 0 at p = n and stays there.)

Fix: ridge regularization. lambda > 0 replaces 1 / s by s / (s^2 + n lambda) <= 1 / (2 sqrt(n
lambda)), so no direction's coefficient can blow up and the peak is gone (Nakkiran et al. 2021,
"Optimal regularization can mitigate double descent"). Of 1e-4, 3e-4, 1e-3, 3e-3 and 1e-2,
lambda = 3e-4 gives the lowest test error at the largest sizes on this data: much larger fits
the teacher worse at every size, much smaller lets the peak back in (lambda -> 0 is the min-norm
fit). With it the test error keeps falling past p = n, and ends below the min-norm error.
"""

import numpy as np

import minigrad as mg
from diagnostics.doctor import diagnose
from diagnostics.experiments.base import Run
from diagnostics.history import History

TITLE = "Double descent: min-norm random-features regression peaks at p = n features and falls again"
FAILURE = "double_descent"
STATEMENT = ("a sweep over model size p (the 'step' axis) at n = 100 training points: min-norm test error "
             "falls to a first minimum, peaks at p = n = 100 at more than 10x that minimum, then falls to below "
             "half of it for large p; fix: ridge lambda = 3e-4 removes the peak (no point after the first "
             "minimum is more than 10% above it; the double_descent finding is gone) and ends below the "
             "min-norm error")

N_TRAIN, N_FEATURES, NOISE, RIDGE = 100, 20, 0.25, 3e-4


def random_relu_features(X, weights):
    """phi(x) = relu(W x) / sqrt(p): the 1 / sqrt(p) keeps ||phi(x)|| of one scale for every p."""
    return np.maximum(X @ weights.T, 0.0) / np.sqrt(len(weights))


def ridge_fit(features, targets, ridge):
    """argmin_a (1/n) ||features a - targets||^2 + ridge ||a||^2, through the SVD; for ridge = 0 the
    minimum-norm least-squares solution (directions with s below round-off are dropped, as pinv does)."""
    U, s, Vt = np.linalg.svd(features, full_matrices=False)
    keep = s > s[0] * max(features.shape) * np.finfo(s.dtype).eps
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    return Vt.T @ (s / (s**2 + len(targets) * ridge) * (U.T @ targets))


def _model_sizes(fast):
    """Log-spaced sizes from 5 to 10 n (20 n in full), and sizes close to n, where the peak is narrow."""
    count, largest = (20, 10 * N_TRAIN) if fast else (40, 20 * N_TRAIN)
    spread = np.geomspace(5, largest, count).round()
    near_threshold = N_TRAIN + np.array([-10, -5, 0, 5, 10])
    return np.unique(np.concatenate([spread, near_threshold])).astype(int)


def _sweep(label, ridge, fast):
    mg.manual_seed(0)
    data = mg.data.teacher_student(n_train=N_TRAIN, n_features=N_FEATURES, noise=NOISE, seed=0)
    X_train, X_test = data.X_train.astype(np.float64), data.X_val.astype(np.float64)
    y_train, y_test = data.y_train[:, 0].astype(np.float64), data.y_val[:, 0].astype(np.float64)
    sizes = _model_sizes(fast)
    all_weights = mg.random.default_generator().standard_normal((sizes[-1], N_FEATURES)) / np.sqrt(N_FEATURES)
    train_error, test_error = [], []
    for p in sizes:
        weights = all_weights[:p]
        train_features = random_relu_features(X_train, weights)
        coefficients = ridge_fit(train_features, y_train, ridge)
        train_error.append(np.mean((train_features @ coefficients - y_train) ** 2))
        test_error.append(np.mean((random_relu_features(X_test, weights) @ coefficients - y_test) ** 2))
    history = History({"step": sizes, "loss": train_error, "val_loss": test_error},
                      metadata={"x_label": "model size p (random features)", "x_scale": "log", "ridge": ridge})
    return Run(label, history, diagnose(history), _measure_sweep(sizes, np.array(test_error)))


def _measure_sweep(sizes, test_error):
    """The first minimum (the best size below the threshold), the peak after it, and the end of the sweep."""
    first = int(np.argmin(np.where(sizes < N_TRAIN, test_error, np.inf)))
    peak = first + int(np.argmax(test_error[first:]))
    return {
        "interpolation_threshold": N_TRAIN,
        "first_minimum_model_size": int(sizes[first]),
        "first_minimum_test_error": float(test_error[first]),
        "peak_model_size": int(sizes[peak]),
        "peak_test_error": float(test_error[peak]),
        "peak_over_first_minimum": float(test_error[peak] / test_error[first]),
        "final_test_error": float(test_error[-1]),
        "final_over_first_minimum": float(test_error[-1] / test_error[first]),
    }


def reproduce(fast=False):
    return _sweep("min-norm least squares", 0.0, fast)


def fix(fast=False):
    return _sweep(f"ridge, lambda = {RIDGE:g}", RIDGE, fast)
