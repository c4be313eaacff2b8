"""Re-ranking and evaluation: scoring runs, ir_measures per query,
significance tests and TIREx aggregates."""
