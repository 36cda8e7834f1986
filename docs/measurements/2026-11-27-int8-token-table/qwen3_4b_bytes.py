import torch
from transformers import AutoModelForCausalLM
from infercomp.architectures import architecture_config
from infercomp.fast.model import LeanModel
from infercomp.quant_table import quantize_tables
from infercomp.measure.memory import weight_bytes

cfg = architecture_config("Qwen/Qwen3-4B")
with torch.device("meta"):
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
bf16 = weight_bytes(model)
lean_bf16 = LeanModel(model).weight_bytes()
table_bf16 = model.model.embed_tokens.weight.numel() * 2
embed, head, tied = quantize_tables(model)
print("tied", tied, "bf16 weights (weight_bytes)", bf16, "LeanModel", lean_bf16)
print("bf16 table", table_bf16, "int8 table (QuantTable.nbytes)", embed.nbytes(), "model after table", weight_bytes(model))
measured_int4, measured_bf16 = 2.984e9, 8.045e9  # H100 run, quant_kernels.jsonl (weight_gb, bf16 table)
new = measured_int4 - table_bf16 + embed.nbytes()
print(f"int4 tile-packed with int8 table: {new/1e9:.3f} GB = {new/measured_bf16:.4f}x of bf16 {measured_bf16/1e9:.3f} GB (from shapes: {new/bf16:.4f}x of {bf16/1e9:.3f})")
