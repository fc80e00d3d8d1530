#!/usr/bin/env python3
"""Fits the polynomial coefficients of the f32 erf/erfc in backends/cpu/vec_math.h.

Not part of the build; kept so the constants can be re-derived or extended.
Needs numpy (Debian: python3-numpy). Prints the coefficients, lowest degree first, and the
largest relative error of each fit evaluated in float32.

  P: erf(z) / z = P(z^2) on [0, 1], degree 7
  Q: erfc(z) * exp(z^2) = Q(2 / (2 + z)) on [0, 9.2], degree 9 (one piece for all z >= 0;
     P now serves only erf near 0)

The fit is least squares on Chebyshev nodes with weights 1/|f| (relative error), re-weighted
a few dozen times towards the largest errors, which approaches the minimax fit.
"""
import math

import numpy as np


def chebyshev_nodes(a, b, n):
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos((2 * k + 1) * np.pi / (2 * n))


def fit_relative(xs, f, variable, degree, rounds=30):
    y = np.array([f(x) for x in xs])
    basis = np.vstack([variable(xs) ** i for i in range(degree + 1)]).T
    w = 1 / np.abs(y)
    for _ in range(rounds):
        c, *_ = np.linalg.lstsq(basis * w[:, None], y * w, rcond=None)
        err = np.abs(basis @ c - y) / np.abs(y)
        w = w * (1 + 5 * err / err.max())
    return c


def horner_f32(c, t):
    t = np.float32(t)
    p = np.float32(c[-1])
    for ci in c[-2::-1]:
        p = np.float32(p * t + np.float32(ci))
    return p


def main():
    zs = chebyshev_nodes(0, 1, 400)
    P = fit_relative(zs, lambda z: math.erf(z) / z, lambda z: z * z, 7)
    worst = max(
        abs(float(np.float32(z) * horner_f32(P, np.float32(z) * np.float32(z))) - math.erf(float(np.float32(z))))
        / math.erf(float(np.float32(z)))
        for z in np.linspace(1e-6, 1, 20001))
    print("P (erf(z)/z in z^2):", ", ".join(f"{c:.17e}" for c in P))
    print(f"  worst relative error of z*P(z^2) in f32: {worst:.3g}")

    # Nodes are Chebyshev in t, the polynomial's variable: z = 2 / t - 2.
    ts = chebyshev_nodes(2 / 11.2, 1, 800)
    g = lambda z: math.erfc(z) * math.exp(z * z)
    Q = fit_relative(2 / ts - 2, g, lambda z: 2 / (2 + z), 9)
    worst = max(abs(float(horner_f32(Q, np.float32(2) / (np.float32(2) + np.float32(z)))) - g(z)) / g(z)
                for z in np.linspace(0, 9.2, 20001))
    print("Q (erfc(z) exp(z^2) in 2/(2+z)):", ", ".join(f"{c:.17e}" for c in Q))
    print(f"  worst relative error of Q in f32: {worst:.3g}")


if __name__ == "__main__":
    main()
