"""Profile-likelihood-ratio chi-square of one signal region (paper Appendix A).

For one signal region with expected signal ``N_S`` (uncertainty ``σ_S``), expected
Standard-Model background ``N_SM`` (uncertainty ``σ_SM``) and ``N_E`` observed
events the likelihood is

    L(μ, ν_S, ν_SM) = Poisson(N_E | λ) · N(ν_S) · N(ν_SM),
    λ = μ · N_S · exp(σ_S / N_S · ν_S) + N_SM · exp(σ_SM / N_SM · ν_SM),

with unit-Gaussian nuisances ν entering log-normally. The chi-square is
``q = −2 ln(L_C / L_G)``: ``L_C`` is maximised over both nuisances at ``μ = 1``,
``L_G`` also over ``μ ∈ ℝ`` (negative values allowed).

The global fit needs no numerics. For ``N_S > 0`` and ``N_E > 0`` the free ``μ`` reaches
``λ = N_E`` with both nuisances at zero (``μ = (N_E − N_SM) / N_S``, negative when the
background alone exceeds the observation), which maximises every factor at once, so
``L_G = Poisson(N_E | N_E) · N(0)²``. For ``N_E = 0`` the Poisson factor ``e^{−λ}`` grows
as ``λ`` falls and the fit stops at ``λ = 0`` (a Poisson mean cannot be negative), so
``L_G = N(0)²``. With ``r = λ / N_E − 1`` the two cases give

    q = 2 · min_ν [ N_E · (r − ln(1 + r)) + ½ (ν_S² + ν_SM²) ]     (N_E > 0)
    q = 2 · min_ν [ λ + ½ (ν_S² + ν_SM²) ]                           (N_E = 0)

The two-dimensional minimum over ``(ν_S, ν_SM)`` is found by a damped Newton
iteration that runs on whole arrays at once. The objective is not convex everywhere:
its Hessian is ``1 + diag(a² x, c² y) − ρ·(a, −c)(a, −c)ᵀ`` (``x``, ``y`` the signal
and background terms of ``λ``, ``a = σ_S / N_S``, ``c = σ_SM / N_SM``,
``ρ = N_E x y / λ²``), which can lose positivity where ``λ < N_E`` when both
uncertainties are large. The iteration therefore shifts the Hessian
to keep it positive definite and backtracks until the objective decreases. At every
stationary point ``ν_S = −a x k`` and ``ν_SM = −c y k`` with ``k = 1 − N_E / λ``, so
both nuisances move the expectation towards the observation. Without an excess
(``N_E ≤ N_S + N_SM``) every stationary point has ``λ ≥ N_E``, where the Hessian is
positive definite, so the minimum is unique. With an excess and both uncertainties
large (``N_E (a² + c²) ≥ 4``, below which the Hessian is positive definite everywhere)
there can be several minima (stay near ``ν = 0``, or raise the signal, the background
or both until they account for ``N_E``); the fit is then also started from each of
those places and the lowest minimum kept.

Two conventions complete the definition:

- ``N_S = 0`` exactly gives ``q = 0``: ``μ`` is then unidentified and both fits agree.
  The limit ``N_S → 0⁺`` is different: the free fit still reaches ``λ = N_E`` while the
  constrained one is left with the background alone, so ``q`` tends to the
  background-only deviance returned by :func:`chi2_background_only`. That limit is what
  a combination should use for a region whose expected signal is exactly zero.
- Asymmetric background errors (``sigma_bkg`` up, ``sigma_bkg_down`` down) enter as a
  bifurcated constraint: the side in the direction the fit pulls the background is
  used, i.e. the upper error when ``N_E > N_S + N_SM`` and the lower one otherwise. The
  profiled background always moves from ``N_SM`` towards the observation, so this is
  the exact profile of a nuisance whose width differs above and below zero, and
  ``q`` stays continuous where the side switches (both sides give ``q = 0`` there).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

logger = logging.getLogger(__name__)

#: Largest exponent fed to ``exp`` (``exp(600) ≈ 1e260``: products with counts and
#: squared relative errors stay below the float64 overflow).
_MAX_EXPONENT = 600.0

#: Floor of ``λ`` (events), so that ``N_E / λ`` and ``ln λ`` stay finite.
_MIN_LAMBDA = 1e-300

#: Largest change of ``σ/N · ν`` (a log-rate) in one Newton step.
_MAX_LOG_STEP = 20.0

#: Largest change of a nuisance in one Newton step, in units of ``_MAX_LOG_STEP``.
_MAX_NU_STEP = 1e3

#: Newton iterations at most; typical cases converge in 3-15.
_MAX_NEWTON_STEPS = 200

#: Step halvings at most per Newton step.
_MAX_HALVINGS = 60

#: Smallest Hessian eigenvalue kept by the shift (the Gaussian priors alone give 1).
_MIN_CURVATURE = 1e-3

#: Convergence: Newton decrement, relative to ``1 + g``, below which the objective
#: (half of q) is final; its remaining error is about this size.
_DECREMENT_TOLERANCE = 1e-11


def chi2_signal_region(
    n_signal: ArrayLike,
    sigma_signal: ArrayLike,
    n_bkg: ArrayLike,
    sigma_bkg: ArrayLike,
    n_obs: ArrayLike,
    *,
    sigma_bkg_down: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Chi-square ``q = −2 ln(L_C / L_G)`` of signal regions, vectorised.

    All arguments broadcast against each other; the result has the broadcast shape.

    Args:
        n_signal: Expected signal events ``N_S ≥ 0``.
        sigma_signal: Absolute signal uncertainty ``σ_S ≥ 0`` (events; statistical and
            systematic added in quadrature by the caller).
        n_bkg: Expected background events ``N_SM ≥ 0``.
        sigma_bkg: Absolute background uncertainty ``σ_SM ≥ 0`` (events); the upper
            one when ``sigma_bkg_down`` is given.
        n_obs: Observed events ``N_E ≥ 0`` (need not be integer).
        sigma_bkg_down: Lower background uncertainty (events), or ``None`` for
            symmetric errors. See the module docstring for the side chosen.

    Returns:
        ``q ≥ 0`` with the broadcast shape; exactly 0 where ``N_S = 0``.

    Raises:
        ValueError: An input is negative or not finite, or the shapes do not broadcast.
    """
    s, sig_s, b, sig_up, n = _checked(
        n_signal=n_signal,
        sigma_signal=sigma_signal,
        n_bkg=n_bkg,
        sigma_bkg=sigma_bkg,
        n_obs=n_obs,
    )
    sig_b = _pick_bkg_error(sig_up, sigma_bkg_down, pulls_up=n > s + b)

    q = np.zeros(s.shape)
    has_signal = s > 0
    if np.any(has_signal):
        q[has_signal] = _profiled_deviance(
            s[has_signal],
            sig_s[has_signal],
            b[has_signal],
            sig_b[has_signal],
            n[has_signal],
        )
    return q


def chi2_background_only(
    n_bkg: ArrayLike,
    sigma_bkg: ArrayLike,
    n_obs: ArrayLike,
    *,
    sigma_bkg_down: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Chi-square of a vanishingly small signal, ``lim_{N_S → 0⁺} q``.

    The free fit still reaches ``λ = N_E`` through ``μ`` while the constrained fit has
    only the background, so this is the background-only deviance
    ``2 min_ν [N_E (r − ln(1 + r)) + ½ ν²]`` with ``λ = N_SM exp(σ_SM / N_SM · ν)``,
    ``r = λ / N_E − 1`` (``2 min_ν [λ + ½ ν²]`` when ``N_E = 0``). It is the
    contribution of a signal region to the zero-signal chi-square of a catalogue.

    Args:
        n_bkg: Expected background events ``N_SM ≥ 0``.
        sigma_bkg: Absolute background uncertainty (events); the upper one when
            ``sigma_bkg_down`` is given.
        n_obs: Observed events ``N_E ≥ 0``.
        sigma_bkg_down: Lower background uncertainty, or ``None`` (symmetric).

    Returns:
        ``q ≥ 0`` with the broadcast shape; ``inf`` where ``N_SM = 0 < N_E`` (no
        background can then produce the observation).

    Raises:
        ValueError: An input is negative or not finite, or the shapes do not broadcast.
    """
    b, sig_up, n = _checked(n_bkg=n_bkg, sigma_bkg=sigma_bkg, n_obs=n_obs)
    sig_b = _pick_bkg_error(sig_up, sigma_bkg_down, pulls_up=n > b)

    q = np.full(b.shape, np.inf)
    possible = (b > 0) | (n == 0)
    zeros = np.zeros(int(np.count_nonzero(possible)))
    q[possible] = _profiled_deviance(
        zeros, zeros, b[possible], sig_b[possible], n[possible]
    )
    return q


def _checked(**arrays: ArrayLike) -> list[NDArray[np.float64]]:
    """Broadcast the named inputs to one shape as float arrays and check their domain."""
    try:
        values = np.broadcast_arrays(
            *(np.asarray(a, dtype=np.float64) for a in arrays.values())
        )
    except ValueError as exc:
        shapes = {k: np.shape(v) for k, v in arrays.items()}
        raise ValueError(f"input shapes do not broadcast: {shapes}") from exc
    for name, value in zip(arrays, values, strict=True):
        bad = ~np.isfinite(value) | (value < 0)
        if np.any(bad):
            first = value[bad].flat[0]
            raise ValueError(f"{name} must be finite and >= 0, got {first!r}")
    return [np.array(v) for v in values]


def _pick_bkg_error(
    sigma_up: NDArray[np.float64],
    sigma_down: ArrayLike | None,
    *,
    pulls_up: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """The background error on the side the fit pulls the background to."""
    if sigma_down is None:
        return sigma_up
    (down,) = _checked(sigma_bkg_down=np.broadcast_to(sigma_down, sigma_up.shape))
    return np.where(pulls_up, sigma_up, down)


def _profiled_deviance(
    s: NDArray[np.float64],
    sig_s: NDArray[np.float64],
    b: NDArray[np.float64],
    sig_b: NDArray[np.float64],
    n: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``2 · min_ν g(ν)`` for 1-D arrays; ``g`` is the objective of the module docstring.

    Requires ``s + b > 0`` element-wise (or ``n = 0``), so ``λ`` stays positive.
    """
    a = np.divide(sig_s, s, out=np.zeros_like(s), where=s > 0)
    c = np.divide(sig_b, b, out=np.zeros_like(b), where=b > 0)
    problem = _Problem(s=s, a=a, b=b, c=c, n=n)
    everything = np.arange(s.size)
    best = problem.objective(problem.minimise(np.zeros((s.size, 2))), everything)

    # Where N_E (a² + c²) < 4 the Hessian is positive definite everywhere (its
    # lowest eigenvalue is at least 1 − N_E p q (a² + c²) with p q ≤ 1/4).
    maybe_multimodal = (n > s + b) & (a > 0) & (c > 0) & (n * (a * a + c * c) >= 4.0)
    multimodal = np.flatnonzero(maybe_multimodal)
    if multimodal.size:
        routes = _best_of_several_starts(problem, multimodal)
        best[multimodal] = np.minimum(best[multimodal], routes)
    return 2.0 * best


def _best_of_several_starts(
    problem: _Problem, rows: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Lowest objective of fits started where the excess is explained.

    With an excess (``N_E > N_S + N_SM``) and large uncertainties the objective can
    have several local minima: near ``ν = 0`` (the penalty wins over a term too
    small to matter) and far out, where the signal, the background or both have
    grown to account for ``N_E``. The fit is rerun from the points where the signal
    alone, the background alone, or each half of ``N_E`` is explained, clipped to
    the ball ``|ν|² ≤ 2 g(0)`` that holds every minimiser, and the lowest minimum
    is kept.
    """
    s, a, b, c, n = (
        v[rows] for v in (problem.s, problem.a, problem.b, problem.c, problem.n)
    )
    sub = _Problem(s=s, a=a, b=b, c=c, n=n)
    local = np.arange(rows.size)
    radius = np.sqrt(2.0 * sub.objective(np.zeros((rows.size, 2)), local))

    def reach(target, count, slope):
        """Nuisance that scales ``count`` to ``target`` (0 where it cannot)."""
        ratio = np.divide(target, count, out=np.ones_like(target), where=target > 0)
        log_ratio = np.log(np.maximum(ratio, 1.0))
        return np.minimum(log_ratio, radius * slope) / slope  # ≤ radius, no overflow

    zero = np.zeros(rows.size)
    starts = (
        (reach(n - b, s, a), zero),
        (zero, reach(n - s, b, c)),
        (reach(0.5 * n, s, a), reach(0.5 * n, b, c)),
    )
    values = [
        sub.objective(sub.minimise(np.stack(start, axis=1)), local) for start in starts
    ]
    return np.min(values, axis=0)


class _Problem:
    """The constrained fit of many signal regions at once, in the nuisances ν."""

    def __init__(self, *, s, a, b, c, n) -> None:
        self.s, self.a, self.b, self.c, self.n = s, a, b, c, n
        self.n_safe = np.where(n > 0, n, 1.0)

    def terms(self, nu: NDArray[np.float64], idx: NDArray[np.intp]):
        """Signal term ``x``, background term ``y`` and ``λ = x + y`` at ``nu``."""
        x = self.s[idx] * np.exp(np.minimum(self.a[idx] * nu[:, 0], _MAX_EXPONENT))
        y = self.b[idx] * np.exp(np.minimum(self.c[idx] * nu[:, 1], _MAX_EXPONENT))
        lam = np.maximum(x + y, _MIN_LAMBDA)
        return x, y, lam

    def objective(self, nu: NDArray[np.float64], idx: NDArray[np.intp]):
        """``g(ν)`` of the module docstring for the rows ``idx``."""
        x, y, lam = self.terms(nu, idx)
        n = self.n[idx]
        poisson = np.where(n > 0, n * _r_minus_log1p(lam, self.n_safe[idx]), x + y)
        return poisson + 0.5 * np.sum(nu * nu, axis=1)

    def gradient_hessian(self, nu: NDArray[np.float64], idx: NDArray[np.intp]):
        """Gradient ``(m, 2)`` and Hessian entries ``h11, h12, h22`` of ``g``.

        Written with the shares ``p = x / λ``, ``q = y / λ`` so that nothing overflows
        when ``λ`` is tiny.
        """
        x, y, lam = self.terms(nu, idx)
        a, c, n = self.a[idx], self.c[idx], self.n[idx]
        p, q = x / lam, y / lam
        npq = n * p * q
        grad = np.stack([a * (x - n * p) + nu[:, 0], c * (y - n * q) + nu[:, 1]], 1)
        h11 = a * a * (x - npq) + 1.0
        h22 = c * c * (y - npq) + 1.0
        h12 = a * c * npq
        return grad, h11, h12, h22

    def newton_step(self, nu: NDArray[np.float64], idx: NDArray[np.intp]):
        """Descent direction from the Hessian shifted to stay positive definite.

        The step is shortened so that no exponent of ``λ`` moves by more than
        ``_MAX_LOG_STEP`` at once; the line search does the rest.
        """
        grad, h11, h12, h22 = self.gradient_hessian(nu, idx)
        half_trace = 0.5 * (h11 + h22)
        lowest = half_trace - np.hypot(0.5 * (h11 - h22), h12)
        shift = np.maximum(0.0, _MIN_CURVATURE - lowest)
        h11, h22 = h11 + shift, h22 + shift
        det = h11 * h22 - h12 * h12
        step0 = -(h22 * grad[:, 0] - h12 * grad[:, 1]) / det
        step1 = -(h11 * grad[:, 1] - h12 * grad[:, 0]) / det
        step = np.stack([step0, step1], axis=1)
        log_move = np.maximum(np.abs(self.a[idx] * step0), np.abs(self.c[idx] * step1))
        move = np.maximum(log_move, np.abs(step).max(axis=1) / _MAX_NU_STEP)
        step *= np.minimum(1.0, _MAX_LOG_STEP / np.maximum(move, _MAX_LOG_STEP))[
            :, None
        ]
        return step, np.sum(grad * step, axis=1)

    def minimise(self, start: NDArray[np.float64]) -> NDArray[np.float64]:
        """Damped Newton from ``start`` ``(m, 2)``; returns the minimising ``ν``.

        A row stops when its Newton decrement ``gᵀH⁻¹g`` (twice the expected
        remaining decrease of the objective) is below ``_DECREMENT_TOLERANCE · (1 + g)``
        or when
        no step length decreases the objective any more (it is then flat to rounding).
        """
        nu = np.array(start, dtype=np.float64)
        active = np.arange(self.s.size)
        for _ in range(_MAX_NEWTON_STEPS):
            step, slope = self.newton_step(nu[active], active)
            nu[active], moved, value = self.backtrack(nu[active], step, slope, active)
            active = active[moved & (-slope > _DECREMENT_TOLERANCE * (1.0 + value))]
            if active.size == 0:
                break
        if active.size:
            logger.debug("profile fit: %s signal regions not converged", active.size)
        return nu

    def backtrack(self, nu, step, slope, idx):
        """Halve each step until the objective decreases enough (Armijo rule).

        Returns the new ``nu``, a mask of rows that moved and the objective before.
        """
        g0 = self.objective(nu, idx)
        t = np.ones(idx.size)
        todo = np.arange(idx.size)
        for _ in range(_MAX_HALVINGS):
            trial = nu[todo] + t[todo, None] * step[todo]
            g1 = self.objective(trial, idx[todo])
            ok = g1 <= g0[todo] + 1e-4 * t[todo] * slope[todo]
            todo = todo[~ok]
            if todo.size == 0:
                break
            t[todo] *= 0.5
        t[todo] = 0.0
        return nu + t[:, None] * step, t > 0, g0


def _r_minus_log1p(lam: NDArray[np.float64], n: NDArray[np.float64]):
    """``r − ln(1 + r) ≥ 0`` with ``r = λ / n − 1``, accurate near ``r = 0`` and ``λ → 0``."""
    r = lam / n - 1.0
    small = np.abs(r) < 1e-3
    rs = np.where(small, r, 0.0)
    series = rs * rs * (0.5 - rs * (1 / 3 - rs * (0.25 - rs * (0.2 - rs / 6))))
    general = r - (np.log(lam) - np.log(n))
    return np.where(small, series, np.maximum(general, 0.0))
