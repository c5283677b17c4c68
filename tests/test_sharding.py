"""Sharded inputs give the unsharded results, with the expected output shardings.

The cases live in ``tests/sharding_cases.py`` and run in one subprocess on 8
simulated CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``),
so this pytest process, and every other test in it, keeps its single device.
Each case below must be reported as run and passed by that subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sharding_cases.py")

#: Every layout the subprocess must run: (mesh layout)/(function or layer).
EXPECTED_CASES = (
    "data-parallel/conv_general_dilated",
    "data-parallel/conv",
    "data-parallel/conv_with_general_padding",
    "data-parallel/conv_transpose",
    "data-parallel/conv_transpose-output_shape",
    "data-parallel/conv_transpose-depthwise",
    "data-parallel/conv_transpose-circular",
    "data-parallel/linen.Conv",
    "data-parallel/linen.ConvTranspose",
    "data-parallel/ConvolutionTranspose",
    "channel-parallel/conv_general_dilated-output-channels",
    "channel-parallel/conv_general_dilated-feature-groups",
    "channel-parallel/conv_transpose-output-channels",
    "channel-parallel/conv_transpose-feature-groups",
    "channel-parallel/linen.ConvTranspose-kernel-sharded",
    "data+channel-parallel/conv_general_dilated",
    "data+channel-parallel/conv_transpose",
    "out_sharding/eager-partition-spec",
    "out_sharding/jit-named-sharding",
    "out_sharding/replicated",
    "out_sharding/required-for-sharded-kernel",
    "explicit-data-parallel/conv_transpose",
    "data-parallel/training-step-linen.ConvTranspose",
    "example/sharded_training.py",
)


@pytest.fixture(scope="module")
def sharding_run() -> tuple[int, dict[str, dict], str]:
    """Run every case once in a subprocess with 8 CPU devices; return (status, records by case, stderr)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    records = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            records[record["case"]] = record
    return proc.returncode, records, proc.stderr


def test_subprocess_ran_every_case_and_succeeded(sharding_run: tuple[int, dict[str, dict], str]) -> None:
    status, records, stderr = sharding_run
    assert set(records) == set(EXPECTED_CASES), stderr[-2000:]
    assert status == 0, stderr[-2000:]


@pytest.mark.parametrize("name", EXPECTED_CASES)
def test_sharding_case(sharding_run: tuple[int, dict[str, dict], str], name: str) -> None:
    _, records, stderr = sharding_run
    assert name in records, stderr[-2000:]
    record = records[name]
    assert record["ok"], record.get("error")
