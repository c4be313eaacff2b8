# Helpers shared by the rules: config validation, names and paths. No rules here.
import os
import re

from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
DEMO = config.get("demo")
TEACHER = config["teacher"]
FIRST_STAGE = config["first_stage"]
EVALUATION = {entry["name"]: entry for entry in config["evaluation"]}
MODELS = {model["name"]: model for model in config["models"]}
BACKBONES = config["backbones"]
SPLITS = ["train", *EVALUATION]


def _check_names():
    """Names key paths: they must be unique and must not shadow each other."""
    reserved = {FIRST_STAGE["name"], TEACHER["name"]}
    for name in [*MODELS, *EVALUATION]:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise ValueError(f"config: name {name!r} may hold only letters, digits and . _ + -")
    clash = reserved & set(MODELS) or set(BACKBONES) & set(MODELS)
    if clash:
        raise ValueError(f"config: models must not reuse the names {sorted(clash)}")
    if len(MODELS) != len(config["models"]):
        raise ValueError("config: two models share one name")
    for name, model in MODELS.items():
        if model["start"] not in BACKBONES and model["start"] not in MODELS:
            raise ValueError(
                f"config: models[{name}].start is {model['start']!r}, which is neither "
                f"a backbone ({', '.join(BACKBONES)}) nor another model"
            )


_check_names()


def _alternatives(names):
    return "|".join(re.escape(name) for name in names)


wildcard_constraints:
    split=_alternatives(SPLITS),
    model=_alternatives(MODELS),
    backbone=_alternatives(BACKBONES),
    system="[^/]+",


def demo_manifest():
    return f"{RESULTS}/data/{DEMO['name']}/manifest.json"


def demo_scoreddocs():
    """Demo subsets' scoreddocs: their first-stage runs, relative to the manifest
    (ir_datasets opens them lazily, once the retrieve stage has written them)."""
    found = {}
    for split in SPLITS:
        prefix, _, subset = dataset_id(split).partition("/")
        if prefix == DEMO["name"]:
            found[subset] = os.path.relpath(first_stage_run(split), os.path.dirname(demo_manifest()))
    return found


def manifests():
    """Local collections to register with ir_datasets before loading any id."""
    found = list(config.get("local_collections", []))
    if DEMO:
        found.append(demo_manifest())
    return found


def dataset_id(split):
    return config["train_dataset"] if split == "train" else EVALUATION[split]["dataset"]


def first_stage_run(split):
    """A configured first-stage run file (e.g. a published one), else BM25's."""
    given = FIRST_STAGE["runs"].get(split)
    return given or f"{RESULTS}/runs/{split}/{FIRST_STAGE['name']}.run"


def first_stage_depth(split):
    if split == "train":
        return FIRST_STAGE["train_num_results"]
    return FIRST_STAGE["num_results"]


def index_dir():
    return f"{RESULTS}/index/{FIRST_STAGE['name']}"


def teacher_run(split):
    """A configured teacher run file, else the simulated teacher's run."""
    given = TEACHER["runs"].get(split)
    return given or f"{RESULTS}/runs/{split}/{TEACHER['name']}.run"


def training_table(name):
    return f"{RESULTS}/training/{name}.parquet"


def model_table(wildcards):
    data = MODELS[wildcards.model]["data"]
    return training_table("hard-negatives" if data == "hard_negatives" else TEACHER["name"])


def model_start(wildcards):
    start = MODELS[wildcards.model]["start"]
    if start in MODELS:
        return checkpoint_dir(start)
    return backbone_dir(start)


def backbone_dir(name):
    """Tiny backbones are built by a rule; hub backbones are fetched when training."""
    spec = BACKBONES[name]
    return f"{RESULTS}/backbones/{name}" if "tiny" in spec else spec["hub"]


def model_start_inputs(wildcards):
    start = model_start(wildcards)
    return [start] if start.startswith(f"{RESULTS}/") else []


def checkpoint_dir(model):
    return f"{RESULTS}/models/{model}/checkpoint"


def training_settings(wildcards):
    model = MODELS[wildcards.model]
    ignored = {"name", "label", "start", "data"}
    return {
        **config["training_defaults"],
        **{key: value for key, value in model.items() if key not in ignored},
    }


def systems():
    """Table rows in order: first stage, teacher, models. The teacher's row needs runs
    of one kind on every evaluation set: all simulated (no runs given) or all given, so
    that its label never names a teacher that did not produce the numbers."""
    rows = [(FIRST_STAGE["name"], FIRST_STAGE["label"])]
    given = TEACHER["runs"]
    if not given or all(split in given for split in EVALUATION):
        rows.append((TEACHER["name"], TEACHER["label"]))
    rows += [(name, model["label"]) for name, model in MODELS.items()]
    return rows


def metrics_file(split, system):
    return f"{RESULTS}/metrics/{split}/{system}.tsv"


def system_run(wildcards):
    """The run a metrics file evaluates (given first-stage runs live elsewhere)."""
    if wildcards.system == FIRST_STAGE["name"]:
        return first_stage_run(wildcards.split)
    return f"{RESULTS}/runs/{wildcards.split}/{wildcards.system}.run"


def model_zoo_cells():
    return [
        (label, EVALUATION[split]["label"], metrics_file(split, system))
        for system, label in systems()
        for split in EVALUATION
    ]


def model_zoo_outputs():
    return [f"{RESULTS}/model-zoo.{ext}" for ext in ("md", "csv", "png")]
