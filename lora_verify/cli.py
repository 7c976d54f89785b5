"""``lora-verify``: the suite's command line (also ``python -m lora_verify``).

    lora-verify run [--impl MODULE] [--sglang REL] [-n N] [--profile ci] [--all] [-- PYTEST ARGS]   the verification run
    lora-verify fuzz --minutes 60 [-n 4] [--impl MODULE]                             a time-boxed fuzzing run
    lora-verify replay CASE.json [--impl MODULE]                                     triage one saved case
    lora-verify matrix --sglang-release 0.4.8 ... [--impl MODULE[:LABEL]] [--out DIR]       a release matrix
    lora-verify mutants [--quick] [-j 2] [--only NAME ...]                           planted bugs (repo root)
    lora-verify bench [--grid small|full] [--quick] [--out DIR]                      the kernel benchmark (GPU)

Each subcommand has its own ``--help``. The backend (Triton's interpreter without CUDA) is chosen here,
before a subcommand's module, which may load kernels, is imported.
"""

import argparse
import importlib
import importlib.metadata
import os
import sys

SUBCOMMANDS = {  # name -> (module with main(argv), one-line help, whether it loads kernels)
    "run": (None, "the verification run: the properties, then the verdict table", False),
    "fuzz": ("lora_verify.fuzz", "a time-boxed fuzzing run: fresh batches until the time is up", False),
    "replay": ("lora_verify.replay", "replay and triage one saved case (every property, a minimised batch)", True),
    "matrix": ("lora_verify.matrix", "the verification run over many implementations (sglang releases)", False),
    "mutants": ("lora_verify.mutate", "planted bugs: does the suite catch each one (from the repo root)", False),
    "bench": ("lora_verify.bench.cli", "the kernel benchmark: ours against the peers, on a GPU", True),
}
SUITE = "lora_verify.suite"
MAIN_JOB = ("test_properties", "test_edges", "test_routing", "test_graph")  # the properties; --all: the whole suite


def run(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="lora-verify run",
        description="Every property of the installed suite against an implementation, then the verdict table "
        "(operation x layout x property: examples, failures, worst error / bound, verdict).",
    )
    parser.add_argument("--impl", default=os.environ.get("LORA_IMPL", "impl"), help="module under test")
    parser.add_argument("--sglang", default=None, help="with --impl lora_verify.adapters.sglang: the release to load "
                        "(a directory, a .whl or a version; default: LORA_SGLANG, else the installed sglang)")
    parser.add_argument("-n", "--workers", default="0", help="pytest-xdist workers (default: none)")
    parser.add_argument("--profile", default=None, help="hypothesis profile: dev (default), ci, gpu")
    parser.add_argument("--all", action="store_true", help="the whole suite: also bad input and large offsets")
    parser.add_argument("--verdicts-json", default=None, help="also write the verdict table here")
    parser.add_argument("--case-dir", default="failures", help="where failing cases are saved")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    modules = [SUITE] if args.all else [f"{SUITE}.{m}" for m in MAIN_JOB]
    # this command imported lora_verify before pytest could mark it for assertion rewriting: harmless here
    rewrite = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
    pytest_args = ["-q", "-rs", "-W", rewrite, "--impl", args.impl, "--case-dir", args.case_dir]
    if "lora_verify.plugin" not in {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}:
        pytest_args = ["-p", "lora_verify.plugin", *pytest_args]  # not installed: a checkout on the path
    sys.path.insert(0, os.getcwd())  # as `python -m pytest` does: the module under test may sit here
    if args.sglang:
        pytest_args += ["--sglang", args.sglang]
    if args.workers != "0":
        pytest_args += ["-n", args.workers]
    if args.profile:
        pytest_args += ["--hypothesis-profile", args.profile]
    if args.verdicts_json:
        pytest_args += ["--verdicts-json", args.verdicts_json]
    import pytest  # here: pytest's assertion rewriting must see the plugin's modules before they are imported

    return int(pytest.main([*pytest_args, *args.pytest_args, "--pyargs", *modules]))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = "\n".join(f"  {name:<8} {help_}" for name, (_, help_, _) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="lora-verify",
        description=__doc__.split("\n")[0],
        epilog=f"subcommands:\n{names}\n\n'lora-verify SUBCOMMAND --help' for each one's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("subcommand", choices=SUBCOMMANDS, metavar="SUBCOMMAND")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv[:1] or ["--help"])
    rest = argv[1:]
    if args.subcommand == "run":
        return run(rest)
    module, _, loads_kernels = SUBCOMMANDS[args.subcommand]
    if loads_kernels:
        importlib.import_module("lora_verify.plugin").activate()
    return int(importlib.import_module(module).main(rest) or 0)
