"""unitconv: unit-aware convolutions for JAX (public re-exports, ``__all__`` and ``__version__``).

The convolutions of `jax.lax`, on saiunit / brainunit ``Quantity``
arrays: units are stripped from the input and the kernel, jax.lax runs on the
raw mantissas, and the product unit is put back (mV with nS gives pA).
Incompatible units are rejected before anything is computed.
"""

from importlib.metadata import PackageNotFoundError, version

from jax.lax import ConvDimensionNumbers, conv_dimension_numbers

from unitconv._cntk import ConvolutionTranspose, ConvolutionTransposeLayer, UnbuiltConvolutionTranspose
from unitconv._functional import conv, conv_general_dilated, conv_with_general_padding
from unitconv._transposed import conv_transpose, conv_transpose_shape


def __getattr__(name: str):
    # The front-ends need their frameworks (the `[flax]` and `[brainstate]` extras): import them
    # only when asked for.
    # unitconv.signal needs no extra; it is imported on use too (it adds import time).
    if name in ("linen", "nnx", "brainstate", "signal"):
        import importlib

        return importlib.import_module(f"unitconv.{name}")
    msg = f"module 'unitconv' has no attribute {name!r}"
    raise AttributeError(msg)


try:
    __version__ = version("jax-unitconv")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = (
    "ConvDimensionNumbers",
    "ConvolutionTranspose",
    "ConvolutionTransposeLayer",
    "UnbuiltConvolutionTranspose",
    "__version__",
    "conv",
    "conv_dimension_numbers",
    "conv_general_dilated",
    "conv_transpose",
    "conv_transpose_shape",
    "conv_with_general_padding",
)
