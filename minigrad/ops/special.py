"""The error function on arrays, which NumPy lacks (GELU needs it).

W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for the error
function", Math. Comp. 23, 1969, pp. 631-638; the coefficients of netlib's specfun/erf), accurate
to double precision on three intervals of |x|:

    |x| <= 0.46875:       erf(x)  = x * A(x^2) / B(x^2)
    0.46875 < |x| <= 4:   erfc(x) = e^(-x^2) * C(|x|) / D(|x|)
    |x| > 4:              erfc(x) = e^(-x^2) / |x| * (1/sqrt(pi) - R(1/x^2) / x^2)

and erf(x) = sign(x) * (1 - erfc(|x|)) outside the first interval.
"""

import numpy as np

# Coefficients listed from the highest power down (np.polyval's order).
_A = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02,
      3.77485237685302021e02, 3.20937758913846947e03)
_B = (1.0, 2.36012909523441209e01, 2.44024637934444173e02,
      1.28261652607737228e03, 2.84423683343917062e03)
_C = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
      6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
      1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03)
_D = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
      1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)
_Q = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) elementwise, in x's floating dtype (computed in float64)."""
    x = np.asarray(x)
    values = x.astype(np.float64)
    magnitude = np.abs(values)
    small = magnitude <= 0.46875
    middle = (magnitude > 0.46875) & (magnitude <= 4.0)
    large = magnitude > 4.0
    result = np.empty_like(values)

    squared = values[small] ** 2
    result[small] = values[small] * np.polyval(_A, squared) / np.polyval(_B, squared)

    y = magnitude[middle]
    erfc_middle = np.exp(-y * y) * np.polyval(_C, y) / np.polyval(_D, y)
    result[middle] = np.sign(values[middle]) * (1.0 - erfc_middle)

    y = magnitude[large]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inverse_square = 1.0 / (y * y)
        rational = inverse_square * np.polyval(_P, inverse_square) / np.polyval(_Q, inverse_square)
        erfc_large = np.exp(-y * y) / y * (_ONE_OVER_SQRT_PI - rational)
    result[large] = np.sign(values[large]) * (1.0 - np.nan_to_num(erfc_large))

    result[np.isnan(values)] = np.nan
    return result.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
