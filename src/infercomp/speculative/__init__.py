"""infercomp's own speculative decoding: batched, ragged, lossless, with dynamic or static caches.

draft_verify.py  the draft-and-verify loop over transformers models (the reference engine's)
accounting.py    what a call counts, and the model of speed that reads the counts
"""
