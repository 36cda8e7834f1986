"""infercomp's own speculative decoding: batched, ragged, lossless, with dynamic or static caches."""
