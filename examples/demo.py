"""unitconv in ten lines: a unit-aware transposed convolution.

A presynaptic voltage trace in mV is upsampled by 2 through a transposed
convolution with a conductance kernel in nS. The result is a current in pA.
Run with ``python examples/demo.py``.
"""

import jax.numpy as jnp
import saiunit as u

import unitconv

v = jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1) * u.mV  # (N, W, C), channels-last
g = jnp.array([0.5, 1.0, 0.5]).reshape(3, 1, 1) * u.nS  # (W, I, O)

i = unitconv.conv_transpose(v, g, strides=(2,), padding="SAME")
print("input  :", v[0, :, 0])
print("kernel :", g[:, 0, 0])
print("output :", i[0, :, 0])
print("unit   :", i.unit, "(mV * nS)")
print("in nA  :", unitconv.conv_transpose(v, g, (2,), "SAME", out_unit=u.nA)[0, :, 0])

try:
    unitconv.conv_transpose(v, g, (2,), "SAME", out_unit=u.mV)
except u.DimensionMismatchError as err:
    print("error  :", err)
