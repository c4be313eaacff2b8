"""Rank-DistiLLM reproduction: distilling LLM re-rankers into monoELECTRA cross-encoders."""

__version__ = "0.1.0"
