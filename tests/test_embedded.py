"""The embedded pair: loads offline, writes English, and its assistant agrees with the main model."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from infercomp.embedded.checks import english_word_share, greedy_draft_acceptance, load_dictionary

SEED_PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "generate short bed time story containing word dog and sausage",
    "Once upon a time",
]


def test_english_share_counts_dictionary_words():
    words = {"the", "cat", "sat", "on", "mat"}
    assert english_word_share("the cat sat on the mat", words) == 1.0
    assert english_word_share("the cat xqzt blorp", words) == 0.5
    assert english_word_share("Lily and the cat", words) == pytest.approx(2 / 3)  # names skipped


@pytest.mark.parametrize("prompt", SEED_PROMPTS)
def test_greedy_completions_are_english(embedded_pair, prompt):
    dictionary = load_dictionary()
    if dictionary is None:
        pytest.skip("no system word list (install Debian's wamerican)")
    tok, main, _ = embedded_pair
    ids = tok(prompt, return_tensors="pt").input_ids
    out = main.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=120, do_sample=False, pad_token_id=tok.pad_token_id
    )
    text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert len(text.split()) >= 40
    assert english_word_share(text, dictionary) >= 0.9, text


def test_assistant_drafts_are_accepted_at_least_60_percent(embedded_pair):
    tok, main, assistant = embedded_pair
    drafted = accepted = 0
    for prompt in SEED_PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        d, a, new = greedy_draft_acceptance(main, assistant, ids, 80, draft_length=4, eos_token_id=tok.eos_token_id)
        drafted, accepted = drafted + d, accepted + a
        # The walk is greedy speculative decoding: it must reproduce the main model's greedy path.
        ref = main.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=len(new),
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )[0, ids.shape[1] :].tolist()
        assert new == ref
    assert accepted / drafted >= 0.6


def test_models_path_loads_offline_with_plain_transformers():
    proc = subprocess.run(
        [sys.executable, "-m", "infercomp.cli", "models", "--path", "embedded:main"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    folder = proc.stdout.strip().splitlines()[-1]
    code = (
        "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer;"
        "AutoTokenizer.from_pretrained(sys.argv[1]); m=AutoModelForCausalLM.from_pretrained(sys.argv[1]);"
        "print(sum(p.numel() for p in m.parameters()))"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    loaded = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, timeout=120, env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert 4_000_000 < int(loaded.stdout.strip()) < 10_000_000


def test_models_lists_embedded_and_architectures():
    proc = subprocess.run([sys.executable, "-m", "infercomp.cli", "models"], capture_output=True, text=True, timeout=60)
    names = [line.split()[0] for line in proc.stdout.strip().splitlines()]
    assert names == ["embedded:main", "embedded:assistant", "Qwen/Qwen3-4B", "Qwen/Qwen3-0.6B"] + [
        "Qwen/Qwen3-8B",
        "Qwen/Qwen3-14B",
        "Qwen/Qwen3-32B",
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-70B",
    ]


def test_unknown_model_path_is_one_line_error():
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "infercomp.cli", "models", "--path", "nobody/nothing-here"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
