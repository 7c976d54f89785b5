"""The run as a picture: per layer and operation, each implementation's time per shape (log scale), with the
roofline and the launch floor of our sorted grids marked. Needs matplotlib (the ``bench`` extra)."""

from pathlib import Path

from lora_verify.bench.results import groups
from lora_verify.bench.tables import fmt_gbps

MARKERS = "os^vD<>Pp*hX"


def write_plot(path: Path, rows, meta: dict) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"plot skipped: {exc}"
    timed = [r for r in rows if r.time_us is not None and r.op != "routing"]
    if not timed:
        return "plot skipped: nothing timed"
    panels = list(dict.fromkeys((r.layer, r.op) for r in timed))
    impls = list(dict.fromkeys(r.impl for r in timed if r.kind != "floor"))
    by_group = groups(rows)
    fig_h = 3.0 * len(panels) + 1.2
    fig, axes = plt.subplots(len(panels), 1, figsize=(18, fig_h), squeeze=False)
    for ax, (layer, op) in zip(axes[:, 0], panels, strict=True):
        labels = [label for (lay, o, label) in by_group if (lay, o) == (layer, op)]
        for k, impl in enumerate(impls):
            points = [(i, by_group[(layer, op, label)].get(impl)) for i, label in enumerate(labels)]
            points = [(i, r.time_us) for i, r in points if r is not None and r.time_us is not None]
            if points:
                style = dict(marker=MARKERS[k % len(MARKERS)], linestyle="-" if impl.startswith("ours") else "none",
                             markersize=6 if impl.startswith("ours") else 4, linewidth=1.2)
                ax.plot(*zip(*points, strict=True), label=impl, **style)
        for i, label in enumerate(labels):
            group = by_group[(layer, op, label)]
            any_row = next(iter(group.values()))
            if any_row.roofline_us:
                ax.hlines(any_row.roofline_us, i - 0.4, i + 0.4, colors="black", linewidth=2,
                          label="roofline (bytes / copy bw)" if i == 0 else None)
            floor = next((r for r in group.values() if r.kind == "floor" and r.time_us), None)
            if floor is not None:
                ax.hlines(floor.time_us, i - 0.4, i + 0.4, colors="green", linestyles="dashed", linewidth=1.5,
                          label="launch floor (empty kernel, our sorted grids)" if i == 0 else None)
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("time (us)")
        ax.set_title(f"{layer} {op} (batch/adapters/rank; pNxL = prefill)", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=6, fontsize=9, bbox_to_anchor=(0.5, 1 - 0.2 / fig_h))
    fig.suptitle(f"LoRA kernels on {meta['gpu']} (bf16, CUDA-graph replay, median); copy bw "
                 f"{fmt_gbps(meta['copy_gbps'])}", fontsize=12, y=1 - 0.02 / fig_h)
    fig.tight_layout(rect=(0, 0, 1, 1 - 1.0 / fig_h))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return f"plot: {path}"
