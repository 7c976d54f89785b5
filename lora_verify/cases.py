"""Saved cases: one example as a self-contained JSON file, and back.

A case names the operation, layout and property, the batch description
(plain numbers, tensors are remade from its seed), the property's drawn
parameters, the implementation under test, and the versions and device it
was seen on. Failing examples are saved during a run (the last write of a
file is hypothesis' shrunk example); ``tests/corpus/`` keeps the ones every
run replays; ``lora-verify replay CASE`` triages one.
"""

import json
import os
import platform
import re
import shlex
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch

from lora_verify.strategies import Batch, Dims, Seq, Slot, Values

REPLAY = "python -m lora_verify replay"  # also `lora-verify replay` where the package is installed
IMPL_ENV = ("LORA_SGLANG",)  # variables that choose what an implementation under test loads: part of a replay


def batch_from_dict(d: dict) -> Batch:
    return Batch(
        max_rank=d["max_rank"],
        slots=tuple(Slot(**s) for s in d["slots"]),
        seqs=tuple(Seq(**s) for s in d["seqs"]),
        dims=Dims(k=d["dims"]["k"], widths=tuple(d["dims"]["widths"]), stack_num=d["dims"]["stack_num"]),
        values=Values(**d["values"]),
    )


def case_record(op, layout, prop, batch, params, impl_name, device, error="") -> dict:
    import triton  # here: importing triton before lora_verify.backend chose the interpreter would fix the choice

    return {
        "op": op,
        "layout": layout,
        "property": prop,
        "batch": asdict(batch),
        "params": params,
        "impl": impl_name,
        "error": error[:4000],
        "versions": {"torch": torch.__version__, "triton": triton.__version__, "python": platform.python_version()},
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (Triton interpreter)",
    }


def case_path(directory, op, layout, prop) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "_", prop.lower()).strip("_")
    return Path(directory) / f"{op}__{layout}__{slug}.json"


def save(directory, record: dict, path=None) -> Path:
    """Writes ``record`` to ``path`` (default: its operation, layout and property under ``directory``)."""
    path = Path(path or case_path(directory, record["op"], record["layout"], record["property"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load(path) -> dict:
    record = json.loads(Path(path).read_text())
    record["batch"] = batch_from_dict(record["batch"])
    return record


@contextmanager
def saved_on_failure(directory, op, layout, prop, batch, params, impl_name, device):
    """Writes the example as a case file if the body fails, and says how to replay it."""
    try:
        yield
    except Exception as exc:
        path = save(directory, case_record(op, layout, prop, batch, params, impl_name, device, repr(exc)))
        env = "".join(f"{k}={shlex.quote(os.environ[k])} " for k in IMPL_ENV if os.environ.get(k))
        exc.add_note(f"saved case: {path}\nreplay it:  {env}{REPLAY} {path} --impl {impl_name}")
        raise
