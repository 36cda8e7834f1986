"""The tensor-parallel part of a report: per-GPU memory, step time and collectives, as Markdown."""

from __future__ import annotations


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def tensor_parallel_markdown(results) -> list[str]:
    """Lines of a '## Tensor parallel' section (none when the run used one device)."""
    tp = results.tensor_parallel
    if not tp:
        return []
    ar = tp["all_reduce"]
    lines = [
        "",
        "## Tensor parallel",
        "",
        f"{tp['size']} ranks ({tp['backend']}) on {', '.join(tp['devices'])}; main model {tp['main_model']}; "
        f"assistant {tp['assistant_model']}; engine {tp['engine']}"
        + (f" ({tp['engine_note']})" if tp.get("engine_note") else "")
        + ".",
        f"All-reduce of {ar['bytes'] / 2**20:.0f} MiB {ar['dtype']}: {ar['seconds'] * 1000:.2f} ms, "
        f"algorithm bandwidth {ar['algbw_gbs']:.1f} GB/s, bus bandwidth {ar['busbw_gbs']:.1f} GB/s (x 2(n-1)/n).",
        "",
        "| method | rank | device | ms/step | peak allocated GB | peak reserved GB | peak RSS GB | weights GB "
        "| KV cache GB | roofline share | collectives ms (share of profiled call) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in tp.get("methods", {}).items():
        collectives = entry.get("collectives") or []
        for i, rank in enumerate(entry.get("ranks", [])):
            c = collectives[i] if i < len(collectives) and collectives[i] else {}
            roof = rank.get("roofline") or {}
            step = rank.get("step_time_s")
            coll = "-"
            if c.get("collective_s") is not None:
                coll = f"{c['collective_s'] * 1000:.1f} ({_fmt(c.get('share_of_profiled_call'), '.0%')})"
            elif c.get("unavailable"):
                coll = c["unavailable"]
            lines.append(
                f"| {method} | {rank['rank']} | {rank['device']} | {_fmt(step and step * 1000, '.2f')} "
                f"| {_fmt(rank.get('gpu_allocated_peak_gb'), '.2f')} | {_fmt(rank.get('gpu_reserved_peak_gb'), '.2f')} "
                f"| {_fmt(rank.get('cpu_rss_peak_gb'), '.2f')} "
                f"| {_fmt(rank.get('weights_gb'), '.3f')} | {_fmt(rank.get('kv_cache_gb'), '.3f')} "
                f"| {_fmt(roof.get('share'), '.1%')} | {coll} |"
            )
    lines += [
        "",
        "Weights, KV cache and roofline are per GPU (the bytes of this rank's shards). Collective time: "
        "torch.profiler over one extra untimed call of the method's first batch (NCCL kernel time on GPU, "
        "time blocked in c10d/gloo ops on CPU), as a share of that call's wall time, which the profiler lengthens.",
    ]
    return lines
