"""The scipy.signal-style convolutions, with units: convolve, correlate, fftconvolve, oaconvolve, convolve2d, ...

scipy.signal's signatures, argument names, defaults and semantics, on
saiunit / brainunit Quantities: the result is in ``unit(in1) * unit(in2)``
(times the unit of ``dx`` when a sample spacing is given), plain arrays give
a plain array. The keyword-only extensions are ``out_unit``, ``mode='causal'``,
``boundary=`` (N-d) and ``dx=``; see docs/signal.md. This module canonicalises
the arguments and handles the units; the computation is in
``unitconv._methods.spectral`` and the choice of method in ``unitconv._auto``.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from unitconv import _auto, _units
from unitconv._methods import spectral

__all__ = (
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
)

MODES = ("full", "same", "valid")
CAUSAL_MODES = (*MODES, "causal")
#: scipy.signal's names for the boundaries, with its aliases.
BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap", "symm": "symm", "symmetric": "symm"}


def _choice(fn: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        msg = f"{fn}: `{name}` must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}."
        raise ValueError(msg)
    return value


def _axes(fn: str, axes: Any, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    items = [axes] if not isinstance(axes, Sequence) or isinstance(axes, str) else list(axes)
    out = []
    for i, ax in enumerate(items):
        try:
            ax = operator.index(ax)
        except TypeError:
            msg = f"{fn}: `axes`[{i}] (={ax!r}) must be an integer."
            raise TypeError(msg) from None
        if not -ndim <= ax < ndim:
            msg = f"{fn}: `axes`[{i}] (={ax}) must be in [{-ndim}, {ndim}) for inputs of rank {ndim}."
            raise ValueError(msg)
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        msg = f"{fn}: `axes` (={axes!r}) must not repeat an axis."
        raise ValueError(msg)
    return tuple(sorted(out))


def _shapes(fn: str, s1: tuple, s2: tuple, axes: tuple, mode: str) -> None:
    """Equal ranks; non-convolved axes equal or 1 (broadcast); 'valid' needs one operand larger everywhere."""
    for i, (a, b) in enumerate(zip(s1, s2, strict=True)):
        if i not in axes and a != b and 1 not in (a, b):
            msg = (
                f"{fn}: incompatible shapes for `in1` {s1} and `in2` {s2}: axis {i} is not convolved "
                f"and its sizes {a} and {b} differ (they must be equal or one of them 1)."
            )
            raise ValueError(msg)
    if mode == "valid":
        ge = all(s1[ax] >= s2[ax] for ax in axes)
        le = all(s1[ax] <= s2[ax] for ax in axes)
        if not (ge or le):
            msg = (
                f"{fn}: for mode='valid', one of `in1` {s1} and `in2` {s2} must be at least as large "
                "as the other in every convolved dimension."
            )
            raise ValueError(msg)


def _dx(fn: str, dx: Any, count: int) -> tuple[float | None, _units.Unit | None]:
    """The product of the spacings (None: no dx) and its unit (None: plain)."""
    if dx is None:
        return None, None
    items = list(dx) if isinstance(dx, (list, tuple)) else [dx] * count
    if len(items) != count:
        msg = f"{fn}: `dx` must be a scalar or have one entry per convolved axis ({count}), got {len(items)} entries."
        raise ValueError(msg)
    value, unit = 1.0, _units.UNITLESS
    quantity = False
    for i, d in enumerate(items):
        m, du = _units.split(fn, f"dx[{i}]", d) if isinstance(d, _units.Quantity) else (d, None)
        m = np.asarray(m)
        if m.ndim != 0 or not np.issubdtype(m.dtype, np.number):
            msg = f"{fn}: `dx`[{i}] (={d!r}) must be a scalar number or Quantity."
            raise TypeError(msg)
        value *= m.item()
        if du is not None:
            unit, quantity = unit * du, True
    return value, (unit if quantity else None)


def _fill(fn: str, fillvalue: Any, unit1: _units.Unit | None) -> Any:
    """``fillvalue`` as a mantissa in in1's unit; None for a zero fill."""
    m, fu = _units.split(fn, "fillvalue", fillvalue) if isinstance(fillvalue, _units.Quantity) else (fillvalue, None)
    m = np.asarray(m)
    if m.ndim != 0 or not np.issubdtype(m.dtype, np.number):
        msg = f"{fn}: `fillvalue` (={fillvalue!r}) must be a scalar number or Quantity."
        raise TypeError(msg)
    in_dim = (unit1 or _units.UNITLESS).dim
    if fu is None:
        if m == 0:
            return None
        if in_dim != _units.UNITLESS.dim:
            msg = (
                f"{fn}: `fillvalue` (={fillvalue!r}) is a plain number but `in1` is in "
                f"{_units.describe(unit1, dimension=True)}; give it in in1's dimension, or 0."
            )
            raise _units.DimensionMismatchError(msg)
        return m
    if fu.dim != in_dim:
        msg = (
            f"{fn}: `fillvalue` is in {_units.describe(fu, dimension=True)}, but `in1` is in "
            f"{_units.describe(unit1, dimension=True)}."
        )
        raise _units.DimensionMismatchError(msg)
    if unit1 is not None and fu != unit1:
        m = np.asarray(_units.Quantity(m, unit=fu).in_unit(unit1).mantissa)
    return None if m == 0 else m


def _conv(fn: str, in1: Any, in2: Any, mode: str, method: str, *, axes: Any = None, boundary: str = "fill",
          fillvalue: Any = 0, dx: Any = None, out_unit: Any = None, correlate: bool = False,
          two_d: bool = False, modes: Sequence[str] = CAUSAL_MODES) -> Any:  # fmt: skip
    """The one path of every public function: check, split units, plan, compute, attach."""
    a, u1 = _units.split(fn, "in1", in1)
    b, u2 = _units.split(fn, "in2", in2)
    mode = _choice(fn, "mode", mode, modes)
    boundary = BOUNDARIES[_choice(fn, "boundary", boundary, tuple(BOUNDARIES))]
    if a.ndim != b.ndim:
        msg = f"{fn}: `in1` and `in2` must have the same rank, got shapes {tuple(a.shape)} and {tuple(b.shape)}."
        raise ValueError(msg)
    if two_d and a.ndim != 2:
        msg = f"{fn}: `in1` and `in2` must both be 2-D arrays, got rank {a.ndim}."
        raise ValueError(msg)
    ax = _axes(fn, axes, a.ndim)
    _shapes(fn, tuple(a.shape), tuple(b.shape), ax, mode)
    fill = _fill(fn, fillvalue, u1)
    dxv, dxu = _dx(fn, dx, len(ax))
    ru = u2 if dxu is None else _units.unit_of(in2) * dxu
    result = _units.product_unit(fn, u1, ru, out_unit)
    dtype = np.result_type(a.dtype, b.dtype)
    if fill is not None and np.iscomplexobj(fill) and not np.issubdtype(dtype, np.complexfloating):
        dtype = np.result_type(dtype, np.complex64)
    if fn in ("fftconvolve", "oaconvolve") or method != "direct":
        dtype = np.result_type(dtype, np.float32)  # FFTs compute in floating point
    if math.prod(a.shape) == 0 or math.prod(b.shape) == 0:
        msg = f"{fn}: `in1` and `in2` must not be empty, got shapes {tuple(a.shape)} and {tuple(b.shape)}."
        raise ValueError(msg)
    if correlate:  # correlate(a, b) = convolve(a, reversed conj(b))
        b = jnp.flip(jnp.conj(b) if np.issubdtype(b.dtype, np.complexfloating) else b, ax)
    mirror = correlate and two_d
    # an axis along which in2 has one sample is a product there (its window is all of in1's axis)
    ax = tuple(i for i in ax if b.shape[i] != 1)
    windows = tuple(spectral.window(mode, a.shape[i], b.shape[i], mirror=mirror) for i in ax)
    if method == "auto":
        circular = boundary == "wrap" and mode == "same"
        method = _auto.choose_signal(tuple(a.shape), tuple(b.shape), ax, windows, dtype, circular=circular)
    blocks, row_block = (), None
    if method == "direct":
        row_block = _auto.direct_block(tuple(a.shape), tuple(b.shape), ax, windows, dtype)
    if method == "oa":
        blocks = tuple(_auto.oa_block(a.shape[i], b.shape[i], n, dtype) for i, (_, n) in zip(ax, windows, strict=True))
    spec = spectral.Spec(
        shape1=tuple(a.shape), shape2=tuple(b.shape), axes=ax, mode=mode, boundary=boundary,
        method=method, blocks=blocks, extend=mode != "valid" and (boundary != "fill" or fill is not None),
        mirror=mirror, row_block=row_block,
    )  # fmt: skip
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    out = spectral.compute(spec, a, b, None if fill is None else jnp.asarray(fill, dtype))
    if mode == "same":  # as scipy: 'same' is in1's shape on every axis, broadcast ones centred too
        out = out[tuple(slice((o - s) // 2, (o - s) // 2 + s) for o, s in zip(out.shape, in1.shape, strict=True))]
    if dxv is not None and dxv != 1.0:
        out = out * jnp.asarray(dxv, out.dtype)
    return _units.attach(out, result)


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto", *, boundary: str = "fill",
             dx: Any = None, out_unit: Any = None) -> Any:  # fmt: skip
    """Convolve two N-dimensional arrays, in units (scipy.signal.convolve).

    Parameters
    ----------
    in1, in2 : array or Quantity
        The signal and the kernel, of equal rank; every axis is convolved.
    mode : {'full', 'valid', 'same', 'causal'}
        scipy's modes, plus 'causal': the first ``in1.shape[d]`` samples of
        'full' along each axis, ``y[t] = sum_{k>=0} in2[k] * in1[t - k]``.
    method : {'auto', 'direct', 'fft', 'oa'}
        'auto' picks 'direct', 'fft' or 'oa' by the static cost model of
        ``unitconv._auto`` (see [choose_conv_method][unitconv.signal.choose_conv_method]).
    boundary : {'fill', 'wrap', 'symm'}, keyword-only
        How ``in1`` is extended: zeros (scipy's behaviour), periodically (with
        'same' this is the circular convolution on a torus) or mirrored.
    dx : scalar, Quantity or sequence of them, keyword-only
        Sample spacing (one per axis, or one for all): the result is
        multiplied by their product and carries their unit (a Riemann sum).
    out_unit : saiunit Unit, keyword-only
        Express the result in this unit (its dimension must match).

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)`` (times ``unit(dx)`` per axis); plain for plain inputs.

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> y = signal.convolve(jnp.array([1.0, 2.0, 3.0]) * u.mV, jnp.array([1.0, 1.0]) * u.nS)
    >>> y.unit == u.mV * u.nS, y.mantissa.tolist()
    (True, [1.0, 3.0, 5.0, 3.0])
    """
    method = _choice("convolve", "method", method, ("auto", "direct", "fft", "oa"))
    return _conv("convolve", in1, in2, mode, method, boundary=boundary, dx=dx, out_unit=out_unit)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto", *, boundary: str = "fill",
              dx: Any = None, out_unit: Any = None) -> Any:  # fmt: skip
    """Cross-correlate two N-dimensional arrays, in units (scipy.signal.correlate).

    ``correlate(in1, in2)`` is ``convolve(in1, in2[::-1].conj())``: complex
    ``in2`` is conjugated, as scipy does.

    Parameters
    ----------
    in1, in2 : array or Quantity
        Of equal rank; every axis is correlated.
    mode : {'full', 'valid', 'same'}
        As scipy.signal.correlate.
    method : {'auto', 'direct', 'fft', 'oa'}
        As [convolve][unitconv.signal.convolve].
    boundary, dx, out_unit : keyword-only
        As [convolve][unitconv.signal.convolve].

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)``.

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> y = signal.correlate(jnp.array([1.0, 2.0, 3.0]) * u.mV, jnp.array([0.0, 1.0]) * u.nS, mode="same")
    >>> y.unit == u.mV * u.nS, y.mantissa.tolist()
    (True, [1.0, 2.0, 3.0])
    """
    method = _choice("correlate", "method", method, ("auto", "direct", "fft", "oa"))
    return _conv(
        "correlate", in1, in2, mode, method, boundary=boundary, dx=dx, out_unit=out_unit, correlate=True, modes=MODES
    )


def fftconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None, *, boundary: str = "fill",
                dx: Any = None, out_unit: Any = None) -> Any:  # fmt: skip
    """Convolve by FFT along ``axes``, in units (scipy.signal.fftconvolve).

    Real FFTs for real operands, of the shortest exact 11-smooth lengths.
    Axes that are not convolved broadcast (sizes equal or 1), as scipy does.

    Parameters
    ----------
    in1, in2 : array or Quantity
        Of equal rank.
    mode : {'full', 'valid', 'same', 'causal'}
        As [convolve][unitconv.signal.convolve].
    axes : int, sequence of int or None
        The convolved axes (default: all).
    boundary, dx, out_unit : keyword-only
        As [convolve][unitconv.signal.convolve].

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)`` (times ``unit(dx)`` per axis).

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> rate = jnp.array([[0.0, 1.0, 0.0, 0.0]]) / u.ms
    >>> g = signal.fftconvolve(rate, jnp.array([[2.0, 1.0]]) * u.nS, mode="causal", axes=1, dx=0.5 * u.ms)
    >>> g.unit == u.nS, [round(v, 4) + 0.0 for v in g.mantissa[0].tolist()]
    (True, [0.0, 1.0, 0.5, 0.0])
    """
    return _conv("fftconvolve", in1, in2, mode, "fft", axes=axes, boundary=boundary, dx=dx, out_unit=out_unit)


def oaconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None, *, boundary: str = "fill",
               dx: Any = None, out_unit: Any = None) -> Any:  # fmt: skip
    """Convolve by overlap-add along ``axes``, in units (scipy.signal.oaconvolve).

    Computed by overlap-save (the same result): along each axis the block
    length minimises the modelled cost per output sample (see
    ``unitconv._auto.oa_block``), all blocks go through one batched FFT call,
    and an axis where blocks would not pay is transformed whole, as in
    [fftconvolve][unitconv.signal.fftconvolve].

    Parameters
    ----------
    in1, in2 : array or Quantity
        Of equal rank.
    mode : {'full', 'valid', 'same', 'causal'}
        As [convolve][unitconv.signal.convolve].
    axes : int, sequence of int or None
        The convolved axes (default: all).
    boundary, dx, out_unit : keyword-only
        As [convolve][unitconv.signal.convolve].

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)``.

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> y = signal.oaconvolve(jnp.ones(1000) * u.mV, jnp.ones(3) * u.nS, mode="valid", out_unit=u.pA)
    >>> y.unit == u.pA, y.shape, round(float(y.mantissa[0]), 3)
    (True, (998,), 3.0)
    """
    return _conv("oaconvolve", in1, in2, mode, "oa", axes=axes, boundary=boundary, dx=dx, out_unit=out_unit)


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill", fillvalue: Any = 0, *,
               out_unit: Any = None) -> Any:  # fmt: skip
    """Convolve two 2-D arrays, in units (scipy.signal.convolve2d).

    Parameters
    ----------
    in1, in2 : 2-D array or Quantity
    mode : {'full', 'valid', 'same'}
    boundary : {'fill', 'wrap', 'symm'}
        scipy's boundaries (its aliases 'pad', 'circular', 'symmetric' too).
    fillvalue : scalar or Quantity
        The value outside ``in1`` for 'fill': in in1's dimension (a plain
        number only for a plain or dimensionless ``in1``, or 0).
    out_unit : saiunit Unit, keyword-only

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)``.

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> field = jnp.eye(3) * u.Hz
    >>> y = signal.convolve2d(field, jnp.ones((3, 3)) * u.ms, mode="same", boundary="wrap")
    >>> y.unit == u.Hz * u.ms, y.mantissa.tolist()[0]
    (True, [3.0, 3.0, 3.0])
    """
    return _conv("convolve2d", in1, in2, mode, "auto", boundary=boundary, fillvalue=fillvalue, out_unit=out_unit,
                 two_d=True, modes=MODES)  # fmt: skip


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill", fillvalue: Any = 0, *,
                out_unit: Any = None) -> Any:  # fmt: skip
    """Cross-correlate two 2-D arrays, in units (scipy.signal.correlate2d).

    Parameters
    ----------
    in1, in2 : 2-D array or Quantity
    mode, boundary, fillvalue, out_unit
        As [convolve2d][unitconv.signal.convolve2d].

    Returns
    -------
    array or Quantity
        In ``unit(in1) * unit(in2)``.

    Examples
    --------
    >>> import jax.numpy as jnp, saiunit as u
    >>> from unitconv import signal
    >>> y = signal.correlate2d(jnp.ones((2, 2)) * u.mV, jnp.ones((1, 1)) * u.nS, fillvalue=1.0 * u.mV)
    >>> y.unit == u.mV * u.nS, y.shape
    (True, (2, 2))
    """
    return _conv("correlate2d", in1, in2, mode, "auto", boundary=boundary, fillvalue=fillvalue, out_unit=out_unit,
                 correlate=True, two_d=True, modes=MODES)  # fmt: skip


def choose_conv_method(in1: Any, in2: Any, mode: str = "full", measure: bool = False) -> Any:
    """The method [convolve][unitconv.signal.convolve] uses with method='auto' (scipy.signal.choose_conv_method).

    Without ``measure`` the answer comes from the static cost model of
    ``unitconv._auto.signal_costs`` (modelled times of 'direct', 'fft' and
    overlap-add 'oa', from the shapes and dtype; never a timing). With
    ``measure=True`` the three are timed (best of three, after compiling) and
    ``(method, {'direct': s, 'fft': s, 'oa': s})`` is returned.

    Parameters
    ----------
    in1, in2 : array or Quantity
    mode : {'full', 'valid', 'same', 'causal'}
    measure : bool

    Returns
    -------
    str or (str, dict)
        'direct', 'fft' or 'oa' (scipy's answers, and unitconv's overlap-add),
        and the times in seconds with ``measure``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from unitconv import signal
    >>> signal.choose_conv_method(jnp.ones(100_000), jnp.ones(2_001))
    'oa'
    >>> signal.choose_conv_method(jnp.ones((512, 512)), jnp.ones((101, 101)))
    'fft'
    >>> signal.choose_conv_method(jnp.ones(100), jnp.ones(3))
    'direct'
    """
    fn = "choose_conv_method"
    a, _ = _units.split(fn, "in1", in1)
    b, _ = _units.split(fn, "in2", in2)
    mode = _choice(fn, "mode", mode, CAUSAL_MODES)
    if a.ndim != b.ndim:
        msg = f"{fn}: `in1` and `in2` must have the same rank, got shapes {tuple(a.shape)} and {tuple(b.shape)}."
        raise ValueError(msg)
    _shapes(fn, tuple(a.shape), tuple(b.shape), tuple(range(a.ndim)), mode)
    if not measure:
        ax = tuple(i for i in range(a.ndim) if b.shape[i] != 1)  # as convolve: a product along those
        windows = tuple(spectral.window(mode, a.shape[i], b.shape[i]) for i in ax)
        dtype = np.result_type(a.dtype, b.dtype, np.float32)
        return _auto.choose_signal(tuple(a.shape), tuple(b.shape), ax, windows, dtype)
    times = {}
    for method in ("direct", "fft", "oa"):
        jax.block_until_ready(convolve(a, b, mode, method))
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            jax.block_until_ready(convolve(a, b, mode, method))
            best = min(best, time.perf_counter() - start)
        times[method] = best
    return min(times, key=times.get), times
