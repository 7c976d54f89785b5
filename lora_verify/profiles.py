"""What an implementation under test claims (SPEC.md, "What another implementation may claim").

An implementation declares its claims once, beside its entry points, as a module attribute ``PROFILE``:
a :class:`Profile` or a plain dict of its fields (so that a kernel module need not import this package).
A module without one is held to the whole contract. Every property names the claims it needs; one the
implementation does not claim is reported as "not claimed" with the profile's reason: neither a pass nor
a failure. The rounding model changes the error bound by exactly the term it implies
(``lora_verify.bounds``), so an error beyond what the declared rounding allows still fails.
"""

from dataclasses import dataclass, field
from typing import Optional

from lora_verify.bounds import EXTRA_ROUNDINGS

DTYPES = ("bfloat16", "float16", "float32")
# the claims a property can need, each the name of a boolean field below or a layout
CLAIMS = ("deterministic", "batch_invariant", "graph_capture", "input_errors")


@dataclass(frozen=True)
class Profile:
    name: str
    version: str = ""
    source: str = ""  # where the kernels were loaded from
    layouts: tuple = ("unsorted", "sorted")  # "unsorted" (per-sequence segments) and/or "sorted" (SPEC.md)
    dtypes: tuple = DTYPES  # of x and the weights
    strided_x: bool = True  # x may be a row-strided view (unit column stride); else it gets a dense x
    deterministic: bool = True  # the same call twice gives the same bits
    batch_invariant: bool = True  # a token's output does not depend on its batch-mates
    graph_capture: bool = True  # calls can be captured in a CUDA graph and replayed over new batches
    input_errors: bool = True  # bad input raises impl.LoRAInputError naming the argument, and writes nothing
    rounding: str = "once"  # lora_verify.bounds.EXTRA_ROUNDINGS: "once" (SPEC.md), "lora_first", "folded_scaling"
    why: dict = field(default_factory=dict)  # claim (a CLAIMS name, a layout, "dtypes", "strided_x") -> reason

    def __post_init__(self):
        if self.rounding not in EXTRA_ROUNDINGS:
            raise ValueError(f"{self.name}: rounding: expected one of {sorted(EXTRA_ROUNDINGS)}, got {self.rounding!r}")
        unknown = set(self.layouts) - {"unsorted", "sorted"} | set(self.dtypes) - set(DTYPES)
        if unknown:
            raise ValueError(f"{self.name}: unknown layouts or dtypes {sorted(unknown)}")
        missing = [c for c in self._unclaimed() if not self.why.get(c)]
        if missing:
            raise ValueError(f"{self.name}: a claim left out needs its reason in 'why': {missing}")

    def _unclaimed(self):
        out = [c for c in CLAIMS if not getattr(self, c)]
        out += [layout for layout in ("unsorted", "sorted") if layout not in self.layouts]
        out += ["dtypes"] if set(self.dtypes) != set(DTYPES) else []
        return out + (["strided_x"] if not self.strided_x else [])

    def unclaimed(self, needs) -> Optional[str]:
        """The reason the first of ``needs`` (claim or layout names) is not claimed; None if all are."""
        for claim in needs:
            if claim in ("both", "any"):
                continue
            if not (claim in self.layouts if claim in ("unsorted", "sorted") else getattr(self, claim)):
                return f"{claim.replace('_', ' ')}: {self.why[claim]}"
        return None

    def summary(self) -> list:
        """Lines for a report's header: who, where from, what is claimed and what not (with the reasons)."""
        head = f"implementation: {self.name}" + (f" {self.version}" if self.version else "")
        lines = [head + (f" ({self.source})" if self.source else "")]
        claimed = [c.replace("_", " ") for c in CLAIMS if getattr(self, c)]
        lines.append(
            f"claims: layouts {', '.join(self.layouts)}; dtypes {', '.join(self.dtypes)}; "
            f"x {'row-strided' if self.strided_x else 'dense only'}; {', '.join(claimed) or 'no other claim'}; "
            f"rounding {self.rounding}"
        )
        lines += [f"not claimed: {c.replace('_', ' ')}: {self.why[c]}" for c in self._unclaimed()]
        return lines


FULL_CONTRACT = "declares no PROFILE: held to the whole contract"


def of(module) -> Profile:
    """The module's declared profile (a Profile or a dict of its fields), or the whole contract."""
    declared = getattr(module, "PROFILE", None)
    if declared is None:
        return Profile(name=module.__name__, source=FULL_CONTRACT)
    return declared if isinstance(declared, Profile) else Profile(**declared)
