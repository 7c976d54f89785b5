"""The package installs, and from a directory that has never seen this repository: ``lora-verify --help``,
``pytest --help`` lists ``--impl``, and the installed properties run against a user's own module.

The package is built from a copy of this checkout (a build writes into its source folder) and installed
without dependencies (they are this environment's) into a temporary target; the commands then run in
another temporary directory with only that target on the path.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_verify.ops import OPS

ROOT = Path(__file__).resolve().parents[1]
USER_MODULE = f'''"""A user's kernels: SPEC.md's entry points (impl's, re-exported) and its own claims."""
from impl import {", ".join(sorted(op.entry for op in OPS))}  # noqa: F401

PROFILE = {{"name": "user kernels", "layouts": ("unsorted",), "why": {{"sorted": "no sorted grid here"}}}}
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target, user, source = (tmp_path_factory.mktemp(name) for name in ("site", "user", "source"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("impl", "reference", "lora_verify"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target)]
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (user / "user_kernels.py").write_text(USER_MODULE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = str(target)
    return target, user, env


def run(installed, *cmd):
    target, user, env = installed
    done = subprocess.run(cmd, cwd=user, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def test_console_script_help(installed):
    rc, out = run(installed, str(installed[0] / "bin" / "lora-verify"), "--help")
    assert rc == 0 and all(name in out for name in ("run", "fuzz", "replay", "mutants", "bench")), out


def test_pytest_knows_the_options(installed):
    rc, out = run(installed, sys.executable, "-m", "pytest", "--help")
    assert rc == 0 and "--impl=IMPL" in out and "--verdicts-json" in out, out[-2000:]


def test_installed_properties_judge_a_users_module(installed):
    """Its claims shape the table: the unsorted closeness passes, the sorted rows are NOT CLAIMED."""
    cmd = [sys.executable, "-m", "lora_verify", "run", "--impl", "user_kernels", "--profile", "dev"]
    rc, out = run(installed, *cmd, "--", "-k", "sgemm_lora_a_fwd and close_to_reference")
    assert rc == 0, out[-3000:]
    assert "implementation: user kernels" in out
    assert "sgemm_lora_a_fwd     unsorted  close to reference" in out and " PASS" in out
    assert "NOT CLAIMED (sorted: no sorted grid here)" in out
    assert "site0/lora_verify/suite/test_properties.py" in out  # the installed suite ran, not this checkout's
