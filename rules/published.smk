# The authors' published evaluation runs (config `published`): the runs of the paper's
# tables streamed out of their archive (with the authors' first-stage runs that the
# first stages with `published` re-rank), evaluated with their notebook's rules, and
# laid out as the paper's tables beside the printed figures. No GPU, no documents:
# `snakemake published --configfile configs/paper.yaml` makes only these.
# rank_distillm.data.published (paths), .published_archive, .published_eval and
# .published_tables hold the logic.
from rank_distillm.data.published import PublishedSpec

PUBLISHED = None
if config.get("published"):
    PUBLISHED = PublishedSpec.from_config(
        config, EXP.root, EXP.published_first_stage_runs(), EXP.manifests()
    )
    PUBLISHED_RUNS = PUBLISHED.run_files()

    # Shared by experiments (under resources/), like the archive whose MD5 pins them.
    rule published_runs:
        input:
            PUBLISHED.archive,
        output:
            list(PUBLISHED_RUNS.values()),
        params:
            spec=PUBLISHED,
        resources:
            mem_mb=COMPUTE["prepare_mem_mb"],
            runtime=120,
        log:
            "resources/logs/published-runs.log",
        benchmark:
            "resources/benchmarks/published-runs.tsv"
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/published_runs.py"

    # Cranfield's archived first-stage run numbers queries by cran.qry's .I field; the
    # pipeline re-ranks it with ir_datasets' ids (its topics' and qrels').
    if PUBLISHED.ids_mapped_runs():

        rule published_ids_mapped:
            input:
                list(PUBLISHED.ids_mapped_runs()),
                EXP.manifests(),
            output:
                list(PUBLISHED.ids_mapped_runs().values()),
            params:
                runs=PUBLISHED.ids_mapped_runs(),
                manifests=EXP.manifests(),
            resources:
                mem_mb=COMPUTE["prepare_mem_mb"],
                runtime=30,
            log:
                "resources/logs/published-ids-mapped.log",
            benchmark:
                "resources/benchmarks/published-ids-mapped.tsv"
            conda:
                "../envs/pipeline.yaml"
            script:
                "../workflow/scripts/published_ids_mapped.py"

    rule published_metrics:
        input:
            EXP.manifests(),
            runs=[PUBLISHED_RUNS[entry] for entry in PUBLISHED.scored_entries()],
        output:
            PUBLISHED.metrics_files(),
        params:
            spec=PUBLISHED,
        resources:
            mem_mb=COMPUTE["prepare_mem_mb"],
            runtime=120,
        log:
            EXP.log("published", "metrics"),
        benchmark:
            EXP.benchmark("published", "metrics")
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/published_metrics.py"

    rule published_tables:
        input:
            PUBLISHED.metrics_files(),
        output:
            list(PUBLISHED.table_files().values()),
        params:
            spec=PUBLISHED,
        log:
            EXP.log("published", "tables"),
        benchmark:
            EXP.benchmark("published", "tables")
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/published_tables.py"

    # Target: the paper's tables from the published runs, nothing else.
    rule published:
        input:
            list(PUBLISHED.table_files().values()),
        localrule: True
