"""Build the embedded model pair: tokenizer, main model, and an assistant distilled from it.

Everything comes from this repository: the corpus is `training.stories` (procedural children's
stories), the tokenizer is a byte-level BPE trained on it, the main model is a small Qwen3
trained on it, and the assistant is a smaller Qwen3 trained to match the main model's next-token
distribution (knowledge distillation), which makes its drafts agree with the main model more
often than an assistant trained on the text alone.

Runs on CPU (2 cores: about 40 minutes with --budget cpu) or on a CUDA GPU (a few minutes).

Usage:
    OMP_WAIT_POLICY=PASSIVE python -m training.train --out src/infercomp/embedded --budget cpu
    python -m training.train --out /tmp/pair --budget gpu --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from training import stories

EOS, PAD = "<|endoftext|>", "<|pad|>"
SEQ_LEN = 256

# Token budgets per model; "smoke" only checks that the script runs end to end.
BUDGETS = {
    "smoke": {"stories": 600, "main_tokens": 40_000, "assistant_tokens": 40_000, "batch": 8},
    "cpu": {"stories": 30_000, "main_tokens": 5_000_000, "assistant_tokens": 5_000_000, "batch": 16},
    "gpu": {"stories": 60_000, "main_tokens": 40_000_000, "assistant_tokens": 30_000_000, "batch": 64},
}

MAIN_SHAPE = dict(
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
)
ASSISTANT_SHAPE = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=64,
)

EVAL_PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "generate short bed time story containing word dog and sausage",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    # Generation batches are left-padded so every row's last prompt token lines up.
    fast.padding_side = "left"
    fast.model_max_length = 1024
    return fast


def encode(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """All texts as one stream of ids, each text followed by EOS."""
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def build_model(shape: dict, tokenizer: PreTrainedTokenizerFast) -> Qwen3ForCausalLM:
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    return Qwen3ForCausalLM(config)


def batches(stream: torch.Tensor, batch: int, gen: torch.Generator):
    """Endless random windows of SEQ_LEN + 1 tokens: (batch, SEQ_LEN + 1)."""
    while True:
        starts = torch.randint(0, len(stream) - SEQ_LEN - 1, (batch,), generator=gen)
        yield torch.stack([stream[s : s + SEQ_LEN + 1] for s in starts])


def lr_at(step: int, total: int, peak: float) -> float:
    warm = max(1, total // 50)
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def autocast(device: str):
    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def train(
    model, stream, tokens: int, batch: int, device: str, seed: int, peak_lr: float, teacher=None, kd_weight: float = 0.9
) -> dict:
    """Train on next-token loss; with a teacher, mostly on KL(teacher || model) instead."""
    steps = max(1, tokens // (batch * SEQ_LEN))
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, betas=(0.9, 0.95), weight_decay=0.1)
    step_fn = torch.compile(model) if device.startswith("cuda") else model
    teacher_fn = None
    if teacher is not None:
        teacher.to(device).eval()
        teacher_fn = torch.compile(teacher) if device.startswith("cuda") else teacher
    it = batches(stream, batch, gen)
    t0, last = time.perf_counter(), float("nan")
    for step in range(steps):
        xy = next(it).to(device)
        x, y = xy[:, :-1], xy[:, 1:]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        with autocast(device):
            logits = step_fn(input_ids=x).logits.float()  # (batch, seq, vocab)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
            if teacher_fn is not None:
                with torch.no_grad():
                    t_logits = teacher_fn(input_ids=x).logits.float()
                kl = F.kl_div(
                    F.log_softmax(logits, -1), F.log_softmax(t_logits, -1), log_target=True, reduction="batchmean"
                ) / x.size(1)
                loss = (1 - kd_weight) * loss + kd_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % max(1, steps // 20) == 0 or step == steps - 1:
            last = loss.item()
            done = (step + 1) * batch * SEQ_LEN
            log(f"step {step + 1}/{steps} loss {last:.3f} {done / (time.perf_counter() - t0):,.0f} tok/s")
    return {
        "steps": steps,
        "tokens": steps * batch * SEQ_LEN,
        "batch": batch,
        "seq_len": SEQ_LEN,
        "peak_lr": peak_lr,
        "final_train_loss": last,
        "seconds": round(time.perf_counter() - t0, 1),
    }


@torch.no_grad()
def validation_loss(model, stream: torch.Tensor, device: str, windows: int = 64) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    xy = next(batches(stream, windows, gen)).to(device)
    losses = []
    for chunk in xy.split(16):
        logits = model(input_ids=chunk[:, :-1]).logits.float()
        losses.append(F.cross_entropy(logits.reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1)))
    return float(torch.stack(losses).mean())


@torch.no_grad()
def evaluate_pair(main, assistant, tokenizer, device: str) -> dict:
    from infercomp.embedded.checks import english_word_share, greedy_draft_acceptance, load_dictionary

    main.eval(), assistant.eval()
    dictionary = load_dictionary()
    drafted = accepted = 0
    samples = {}
    for prompt in EVAL_PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
        d, a, new = greedy_draft_acceptance(main, assistant, ids, 120, 4, tokenizer.eos_token_id)
        drafted, accepted = drafted + d, accepted + a
        text = tokenizer.decode(new, skip_special_tokens=True)
        samples[prompt] = {
            "greedy": text,
            "english_share": None if dictionary is None else round(english_word_share(text, dictionary), 3),
        }
    return {"acceptance_rate_draft4": round(accepted / max(1, drafted), 3), "samples": samples}


def save(model, tokenizer, folder: Path, dtype: torch.dtype) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.to("cpu", dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    budget = BUDGETS[args.budget]
    log(f"budget {args.budget}: {budget}; device {args.device}")

    texts = stories.corpus(budget["stories"], args.seed)
    n_val = max(20, len(texts) // 50)
    train_texts, val_texts = texts[n_val:], texts[:n_val]
    tokenizer = train_tokenizer(train_texts, args.vocab)
    train_stream, val_stream = encode(tokenizer, train_texts), encode(tokenizer, val_texts)
    log(f"corpus: {len(texts)} stories, {len(train_stream):,} train tokens, {len(val_stream):,} val")

    torch.manual_seed(args.seed)
    main_model = build_model(MAIN_SHAPE, tokenizer)
    main_stats = train(
        main_model, train_stream, budget["main_tokens"], budget["batch"], args.device, args.seed, peak_lr=3e-3
    )
    main_stats["val_loss"] = validation_loss(main_model, val_stream, args.device)
    log(f"main val loss {main_stats['val_loss']:.3f}")

    torch.manual_seed(args.seed + 1)
    assistant = build_model(ASSISTANT_SHAPE, tokenizer)
    asst_stats = train(
        assistant,
        train_stream,
        budget["assistant_tokens"],
        budget["batch"],
        args.device,
        args.seed + 1,
        peak_lr=4e-3,
        teacher=main_model,
    )
    asst_stats["val_loss"] = validation_loss(assistant, val_stream, args.device)
    log(f"assistant val loss {asst_stats['val_loss']:.3f}")

    # Store bf16 (half the bytes); evaluate what is shipped: the bf16 weights, run in fp32.
    for model, name in ((main_model, "main"), (assistant, "assistant")):
        save(model, tokenizer, args.out / name, torch.bfloat16)
    main_model.float().to(args.device)
    assistant.float().to(args.device)
    evaluation = evaluate_pair(main_model, assistant, tokenizer, args.device)
    log(f"acceptance (draft 4): {evaluation['acceptance_rate_draft4']}")
    for prompt, sample in evaluation["samples"].items():
        log(f"{prompt!r} -> {sample['greedy'][:300]!r}")

    record = {
        "script": "training/train.py",
        "command": f"python -m training.train --budget {args.budget}",
        "seed": args.seed,
        "budget": args.budget,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor(),
        "corpus": {
            "source": "training/stories.py (procedural, written for this project)",
            "stories": len(texts),
            "train_tokens": len(train_stream),
            "val_tokens": len(val_stream),
        },
        "tokenizer": {"kind": "byte-level BPE", "vocab_size": len(tokenizer)},
        "main": {"shape": MAIN_SHAPE, "parameters": sum(p.numel() for p in main_model.parameters()), **main_stats},
        "assistant": {
            "shape": ASSISTANT_SHAPE,
            "parameters": sum(p.numel() for p in assistant.parameters()),
            "distilled_from": "main",
            **asst_stats,
        },
        "stored_dtype": "bfloat16",
        "evaluation": evaluation,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    (args.out / "TRAINING.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
