"""Measurement: synchronized clocks and per-step timestamps, memory, energy, bandwidth, statistics.

Every tracker keeps raw values; figures are derived from them afterwards, outside the timed region.
"""
