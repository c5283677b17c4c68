"""Sharded inputs give the unsharded results, with the expected output shardings.

The cases live in ``tests/sharding_cases.py`` and run in one subprocess on 8
simulated CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``),
so this pytest process, and every other test in it, keeps its single device.
Each case below must be reported as run and passed by that subprocess.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

#: Slow (subprocesses on simulated devices): skipped by the fast loop, `python -m pytest -m "not slow"`.
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("sharding_cases.py")
DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"

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
    "docs/scaling.md",
)


@pytest.fixture(scope="module")
def sharding_run() -> tuple[int, dict[str, dict], str]:
    """Run every case once in a subprocess with 8 CPU devices; return (status, records by case, stderr)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PJRT_NPROC"] = "16"  # two pool threads per simulated device: collectives never starve (docs/scaling.md)
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


# --- the multi-host program of docs/scaling.md, on two CPU processes -------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(program: Path, n_processes: int, process_id: int, port: int, devices: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PJRT_NPROC=str(2 * devices),
        COORDINATOR=f"127.0.0.1:{port}",
        NUM_PROCESSES=str(n_processes),
        PROCESS_ID=str(process_id),
    )
    return subprocess.Popen(
        [sys.executable, str(program)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _losses(stdout: str) -> np.ndarray:
    line = next(line for line in stdout.splitlines() if line.startswith("losses (pA^2):"))
    return np.array([float(v) for v in line.split(":", 1)[1].split()])


def test_multihost_program_from_docs(tmp_path: Path) -> None:
    """Two processes x 4 devices (jax.distributed over localhost) give one process x 8 devices' losses."""
    page = DOCS_PAGE.read_text(encoding="utf-8")
    (program,) = [b for b in re.findall(r"^```python\n(.*?)^```$", page, re.S | re.M) if "jax.distributed" in b]
    path = tmp_path / "train_multihost.py"
    path.write_text(program, encoding="utf-8")
    port2, port1 = _free_port(), _free_port()
    procs = [_start(path, 2, i, port2, 4) for i in range(2)] + [_start(path, 1, 0, port1, 8)]
    outs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            outs.append(out)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    two_hosts, second_host, one_host = outs
    assert "hosts 2, devices 8, batch (32, 32, 1) in mV" in two_hosts
    assert "hosts 1, devices 8, batch (32, 32, 1) in mV" in one_host
    assert "losses" not in second_host  # only process 0 prints
    losses2, losses1 = _losses(two_hosts), _losses(one_host)
    assert losses2.shape == (30,)
    np.testing.assert_allclose(losses2, losses1, rtol=1e-5)
    assert losses2[-1] < losses2[0] / 2
