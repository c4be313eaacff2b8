"""A shortened demo, trained and re-ranked in a fresh process under given numerics.

``python -m tests.portable_run <demo workdir> <out dir> on|off [steps]`` builds the demo's
tiny backbone, trains each of its models for a few steps (each from the previous one; 10
unless ``steps`` says otherwise), re-ranks the first evaluation set's first-stage run
with the last, and writes ``result.json``:
the SHA-256 of every checkpoint's weights and of the run, and the scores. The demo's
files (collection, training tables, runs) come from a finished demo run in the workdir;
the environment (set by the caller) says which CPU capabilities the process may use.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

STEPS = 10  # optimizer steps per model: enough to move every weight


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(workdir: Path, out: Path, portable: bool, step_count: int = STEPS) -> None:
    from rank_distillm.model import numerics

    numerics.pin(portable)  # before torch
    import os

    import torch

    from rank_distillm import experiment, steps
    from rank_distillm.data import trec as trec_io
    from tests.helpers import load_config

    os.chdir(workdir)
    exp = experiment.from_config(load_config(["config.yaml"], "schemas/config.schema.yaml"))
    torch.set_num_threads(exp.config["compute"]["train_threads"])
    result: dict[str, object] = {"numerics": numerics.enforce()}
    start = ""
    for name, backbone in exp.backbones.items():
        start = str(out / "backbones" / name)
        steps.build_tiny_backbone(exp.manifests(), exp.collection, backbone.tiny, Path(start))
        result[f"backbone {name}"] = sha256(Path(start) / "model.safetensors")
    for name, model in exp.models.items():
        checkpoint = out / "models" / name / "checkpoint"
        settings = {k: v for k, v in model.settings.items() if k != "epochs"}
        steps.train_checkpoint(
            start,
            Path(exp.model_table(name)),
            exp.manifests(),
            exp.train_dataset,
            checkpoint,
            checkpoint.parent / "loss.csv",
            {**settings, "steps": step_count},
        )
        result[f"model {name}"] = sha256(checkpoint / "model.safetensors")
        start = str(checkpoint)
    stage, split = exp.pairs[0]
    run = out / "reranked.run"
    torch.set_num_threads(1)  # as the rerank rule
    job = {
        "dataset": exp.dataset_id(split),
        "first_stage_run": exp.first_stage_run(stage, split),
        "out_run": str(run),
        "depth": exp.first_stages[stage].depth,
    }
    steps.rerank_first_stages(start, exp.manifests(), [job], 128, "short", "cpu", "fp32")
    result["run"] = sha256(run)
    reranked = trec_io.read_run(run)
    keys = reranked["query_id"] + " " + reranked["doc_id"]
    result["scores"] = dict(zip(keys, reranked["score"], strict=True))
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    step_count = int(sys.argv[4]) if len(sys.argv) > 4 else STEPS
    main(Path(sys.argv[1]), Path(sys.argv[2]).resolve(), sys.argv[3] == "on", step_count)
