"""The notes printed under the tables: methods whose completions are the same texts are named."""

from __future__ import annotations

from infercomp.report.tables import notes, same_texts
from infercomp.results import CompletionRecord, MethodResult, Results


def method(texts: list[str], **generation) -> MethodResult:
    rows = [
        CompletionRecord(
            prompt_index=i // 2, completion_index=i % 2, text=t, prompt_tokens=3, new_tokens=4, finish="length",
            call_index=0, call_time_s=0.1, tokens_per_second=40.0,
        )
        for i, t in enumerate(texts)
    ]  # fmt: skip
    return MethodResult(status="ok", completions=rows, generation=generation)


def test_methods_with_the_same_texts_are_named_with_their_settings():
    sampled = dict(do_sample=True, top_p=0.9)
    results = Results(
        config={},
        methods={
            "standard": method(["a", "b", "c", "d"]),
            "batched": method(["x", "y", "z", "w"], temperature=0.7, top_k=50, **sampled),
            "nucleus_sampling": method(["x", "y", "z", "w"], temperature=0.8, top_k=0, **sampled),
            "beam_search": method(["x", "y", "z", "v"], num_beams=2),
        },
    )
    lines = same_texts(results)
    assert lines == [
        "batched (temperature 0.7, top_p 0.9, top_k 50), nucleus_sampling (temperature 0.8, top_p 0.9, top_k 0): "
        "the same 4 texts, so their quality figures describe one set of texts; only their speeds are separate "
        "measurements"
    ]
    assert lines[0] in notes(results)


def test_different_texts_failed_methods_and_empty_methods_give_no_line():
    results = Results(
        config={},
        methods={
            "standard": method(["a", "b"]),
            "batched": method(["a", "c"]),
            "beam_search": MethodResult(status="failed", reason="out of memory"),
            "nucleus_sampling": MethodResult(status="skipped", reason="not asked"),
        },
    )
    assert same_texts(results) == []
    greedy_twins = Results(config={}, methods={"standard": method(["a"]), "batched": method(["a"])})
    assert same_texts(greedy_twins)[0].startswith("standard (greedy), batched (greedy): the same 1 text,")
