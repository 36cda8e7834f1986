"""standard: one completion per generate call (batch size 1), the baseline every other method
is compared with."""

from infercomp.methods.base import Method
from infercomp.methods.registry import register

STANDARD = register(
    Method(
        name="standard",
        summary="one completion per call (batch size 1); the baseline",
        batching="single",
    )
)
