"""Teacher runs generated with an open listwise LLM (RankZephyr / RankGPT prompts).

``generate_teacher_run`` is the step the workflow calls; the modules below it have one job
each: ``prompts`` (rank_llm's prompt text and truncation), ``window`` (the sliding window),
``parsing`` (answers to permutations, with repair counts), ``backends`` (transformers or
vLLM), ``generate`` (batching, resuming, the run file), ``shards`` (a run's queries cut
into GPU jobs), ``merge`` (the shards' runs checked and merged), ``tiny_lm`` (a random
stand-in LM).
"""

from rank_distillm.teachers.llm.generate import GenerationSettings, generate_teacher_run

__all__ = ["GenerationSettings", "generate_teacher_run"]
