"""Every independent reference the tests compare unitconv against, the random-array helper and tolerances.

Nothing here calls unitconv. The references are: jax.lax on mantissas
(:func:`lhs_dilated_reference`, :func:`forward_conv`), the vjp of the forward
convolution (:func:`vjp_oracle`), jax's own shape rule
(:func:`reachable_input_sizes`), NumPy loops (:func:`numpy_conv_transpose`,
:func:`circular_reference`, a periodic-sum loop) and flax's module
(:func:`flax_conv_transpose`).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

#: Per-dtype tolerance, relative to the largest expected magnitude.
TOL = {
    jnp.float16: 2e-2,
    jnp.bfloat16: 3e-2,
    jnp.float32: 1e-5,
    jnp.float64: 1e-12,
    jnp.complex64: 1e-5,
}


def randn(rng: np.random.Generator | int, shape, dtype=jnp.float32):
    """Seeded standard-normal array of ``shape`` and ``dtype`` (``rng`` a Generator or a seed)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return jnp.asarray(rng.standard_normal(shape), dtype=dtype)


def spec_shape(spec: str, sizes: dict[str, int]) -> tuple[int, ...]:
    """Shape of an operand laid out as ``spec`` (e.g. 'NHWC') with per-letter sizes."""
    return tuple(sizes[c] for c in spec)


def assert_close(actual, expected, tol: float = 1e-5):
    """Agreement within ``tol`` relative to the largest expected magnitude (at least 1); same shape."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def dilated(k: int, d: int) -> int:
    """A kernel of ``k`` taps dilated by ``d`` spans this many elements."""
    return d * (k - 1) + 1


def lhs_dilated_reference(lhs, rhs, strides, pads, rhs_dilation, dn, groups=1, preferred_element_type=None):
    """jax.lax's lhs-dilated convolution: the computation every transposed convolution reduces to."""
    return lax.conv_general_dilated(
        lhs,
        rhs,
        (1,) * len(strides),
        pads,
        lhs_dilation=strides,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dn,
        feature_group_count=groups,
        preferred_element_type=preferred_element_type,
    )


def forward_conv(x, w, strides, padding, dil, dn, groups=1):
    """The forward convolution whose adjoint a transposed convolution is."""
    return lax.conv_general_dilated(
        x, w, strides, padding, rhs_dilation=dil, dimension_numbers=dn, feature_group_count=groups
    )


def vjp_oracle(ct, w, x_shape, strides, padding, dil, dn, groups=1):
    """d<ct, forward(x)>/dx at an input of shape ``x_shape``: the transposed convolution."""

    @jax.jit  # one compile for the whole pullback instead of one per eager op
    def pullback_of(ct, w):
        x0 = jnp.zeros(x_shape, jnp.float32)
        y, pullback = jax.vjp(lambda x: forward_conv(x, w, strides, padding, dil, dn, groups), x0)
        assert y.shape == ct.shape, "oracle misuse: the forward conv does not map x_shape onto the cotangent"
        return pullback(ct)[0]

    return pullback_of(ct, w)


def forward_output_size(m: int, k: int, s: int, padding) -> int:
    """Output size of a 1-D forward convolution by jax's own shape rule (``padding`` a string or a pair)."""
    pad = padding if isinstance(padding, str) else [tuple(padding)]
    return lax.conv_shape_tuple((1, 1, m), (1, 1, k), (s,), pad)[2]


def reachable_input_sizes(n: int, k: int, s: int, padding: str, scan: int | None = None) -> list[int]:
    """Forward input sizes m that the forward conv (dilated kernel k, stride s) maps onto n outputs.

    Enumerated with jax's shape rule, so it shares no formula with unitconv.
    """
    scan = (n + 2) * s + k + 2 if scan is None else scan
    return [m for m in range(scan) if forward_output_size(m, k, s, padding) == n]


def numpy_conv_transpose(x, w, strides, pad):
    """Direct loop: out[i * s + k] += x[i] * w[k] per axis, then CNTK's crop per axis.

    x: (C, H, W); w: (C, K, kh, kw). 'VALID' keeps the first (n - 1) * s +
    max(k, s) elements; 'SAME' keeps n * s elements from offset
    max(0, (k - s) // 2), as jax.lax.conv_transpose defines them.
    """
    c, h, wd = x.shape
    _, kk, kh, kw = w.shape
    (sh, sw) = strides
    full = np.zeros((kk, (h - 1) * sh + max(kh, sh), (wd - 1) * sw + max(kw, sw)))
    for ci in range(c):
        for i in range(h):
            for j in range(wd):
                full[:, i * sh : i * sh + kh, j * sw : j * sw + kw] += x[ci, i, j] * w[ci]
    out = full
    for axis, (n, k, s, p) in enumerate(zip((h, wd), (kh, kw), strides, pad, strict=True)):
        if p:
            start = max(0, (k - s) // 2)
            out = np.take(out, range(start, start + n * s), axis=axis + 1)
    return out


def circular_reference(x, w, strides, dil, transpose_kernel):
    """flax's CIRCULAR mode, as a direct loop: scatter every input element through every kernel tap.

    In the 'VALID' transposed convolution (channels-last, HWIO kernel after jax's transpose_kernel
    flip and I/O swap), lhs element i times kernel tap j lands at t = i * s + (K - 1) - j * d, K the
    dilated kernel size; that output has L = (n - 1) * s + max(K, s) elements. flax pads it with
    `a` zeros in front up to an odd number of periods P = n * s and sums the periods, so t goes to
    (t + a) mod P, with diff = (P - L) mod 2P and a = diff // 2 (transpose_kernel) or (diff + 1) // 2.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    ndim = x.ndim - 2
    if transpose_kernel:
        w = np.swapaxes(np.flip(w, tuple(range(ndim))), -1, -2)
    sizes, ksizes = x.shape[1:-1], w.shape[:ndim]
    eff = [dilated(k, d) for k, d in zip(ksizes, dil, strict=True)]
    periods = [n * s for n, s in zip(sizes, strides, strict=True)]
    shifts = []
    for n, s, kk, period in zip(sizes, strides, eff, periods, strict=True):
        diff = (period - ((n - 1) * s + max(kk, s))) % (2 * period)
        shifts.append(diff // 2 if transpose_kernel else (diff + 1) // 2)
    out = np.zeros((x.shape[0], *periods, w.shape[-1]))
    for i in itertools.product(*(range(n) for n in sizes)):
        for j in itertools.product(*(range(k) for k in ksizes)):
            r = tuple(
                (ii * s + kk - 1 - jj * d + a) % period
                for ii, jj, s, d, kk, a, period in zip(i, j, strides, dil, eff, shifts, periods, strict=True)
            )
            out[(slice(None), *r, slice(None))] += x[(slice(None), *i, slice(None))] @ w[j]
    return out


def flax_conv_transpose(x, w, *, strides, padding, kernel_dilation=None, transpose_kernel=False):
    """flax.linen.ConvTranspose with kernel ``w`` (no bias) applied to ``x``."""
    import flax.linen as nn

    layer = nn.ConvTranspose(
        w.shape[-1],
        w.shape[:-2],
        strides=strides,
        padding=padding,
        kernel_dilation=kernel_dilation,
        use_bias=False,
        transpose_kernel=transpose_kernel,
    )
    return layer.apply({"params": {"kernel": w}}, x)


def padded_valid_reference(lhs, rhs, window_strides, pads, lhs_dilation, rhs_dilation, dn, groups=1):
    """The convolution as its definition: dilate and pad (or crop) lhs, then a 'VALID' convolution.

    Dilation writes lhs into a zero array every ``d``-th element, positive pads
    are ``jnp.pad``, negative pads are slices, all in the canonical layout
    ``(N, *spatial, C)`` / ``(*spatial, I, O)``; then one 'VALID', undilated
    jax.lax convolution at HIGHEST precision, whose window has no padding and
    no base dilation (so it meets neither XLA:CPU defect that
    tests/test_xla_defects.py covers). Differentiable, for gradient oracles.
    """
    spec = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dn)
    n = len(pads)
    x = jnp.transpose(lhs, spec.lhs_spec)  # (N, C, *spatial)
    x = jnp.moveaxis(x, 1, -1)  # (N, *spatial, C)
    w = jnp.transpose(rhs, spec.rhs_spec)  # (O, I, *spatial)
    w = jnp.moveaxis(jnp.moveaxis(w, 0, -1), 0, -2)  # (*spatial, I, O)
    for i, ((lo, hi), d) in enumerate(zip(pads, lhs_dilation, strict=True)):
        axis = 1 + i
        size = x.shape[axis]
        if d > 1 and size > 0:
            shape = list(x.shape)
            shape[axis] = d * (size - 1) + 1
            index = [slice(None)] * x.ndim
            index[axis] = slice(None, None, d)
            x = jnp.zeros(shape, x.dtype).at[tuple(index)].set(x)
        widths = [(0, 0)] * x.ndim
        widths[axis] = (max(lo, 0), max(hi, 0))
        x = jnp.pad(x, widths)
        index = [slice(None)] * x.ndim
        index[axis] = slice(max(-lo, 0), x.shape[axis] - max(-hi, 0))
        x = x[tuple(index)]
    canonical = ("N" + "ABDEFGHJKL"[:n] + "C", "ABDEFGHJKL"[:n] + "IO", "N" + "ABDEFGHJKL"[:n] + "C")
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides,
        [(0, 0)] * n,
        rhs_dilation=rhs_dilation,
        dimension_numbers=canonical,
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    out = jnp.moveaxis(y, -1, 1)  # (N, C, *spatial)
    return jnp.transpose(out, tuple(int(i) for i in np.argsort(spec.out_spec)))
