"""The demo's simulated listwise teacher: a noisy oracle ranking derived from qrels.

It stands in for RankZephyr where no LLM can run. Its runs have the Zenodo teacher
format (``qid Q0 docid rank score tag`` with score = depth + 1 - rank), so everything
downstream treats it exactly like a real teacher run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rank_distillm.data import trec as trec_io


def simulate_teacher(
    first_stage: pd.DataFrame, qrels: pd.DataFrame, depth: int, noise: float, seed: int
) -> pd.DataFrame:
    """Re-rank each query's first-stage top ``depth`` by relevance label + N(0, noise²).

    Unjudged passages count as label 0. ``noise`` is in label units: 0 gives the ideal
    ranking, 1 confuses neighbouring grades often.
    """
    candidates = trec_io.truncate_run(first_stage, depth)
    labels = candidates.merge(qrels, on=["query_id", "doc_id"], how="left")["relevance"]
    rng = np.random.default_rng(seed)
    teacher = candidates.assign(
        score=labels.fillna(0).to_numpy(dtype=float) + rng.normal(0.0, noise, len(candidates))
    )
    teacher = trec_io.rank_by_score(teacher)
    teacher["score"] = (depth + 1 - teacher["rank"]).astype("float64")
    return teacher
