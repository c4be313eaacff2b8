# Stage 7: what a researcher publishes. The model-zoo table (Markdown, CSV, LaTeX, HTML)
# with significance markers, its bar chart, per-query scatter plots against the
# baseline, a loss curve per trained model, per-job runtime and memory, and the config and
# package versions: all flagged for `snakemake --report results/<experiment>/report.html`.
# `snakemake tables` rebuilds the tables and plots from the metrics on disk and never
# schedules an upstream job (see docs/report.md). rank_distillm.report.files holds the
# logic; the TIREx tables (rule tirex_tables) get the same formats and markers. With
# config `published`, both tables also test each trained model against the authors' run
# of its system (rank_distillm.evaluation.reproduction), so they read those metrics files too.
from rank_distillm.report.files import loss_png
from rank_distillm.report_plan import report_spec


try:
    REPORT = report_spec(EXP, config, PUBLISHED)
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None

ZOO = REPORT.zoo_files()
PAGES = REPORT.pages()
ZOO_FILES = {
    "html": "table (HTML)",
    "md": "Markdown",
    "csv": "CSV: all measures, query counts, markers, p-values",
    "tex": "LaTeX (booktabs)",
    "tests": "significance tests (CSV)",
}


rule model_zoo:
    input:
        REPORT.metrics_files(),
    output:
        **{
            kind: report(
                ZOO[kind],
                caption="../workflow/report/model-zoo.rst",
                category="1. Tables",
                subcategory="Model zoo",
                labels={"table": "model zoo", "file": label},
            )
            for kind, label in ZOO_FILES.items()
        },
        png=report(
            ZOO["png"],
            caption="../workflow/report/bar-chart.rst",
            category="2. Plots",
            subcategory="Model zoo",
            labels={"plot": "bar chart per system"},
        ),
    params:
        spec=REPORT,
    log:
        EXP.log("report", "model-zoo"),
    benchmark:
        EXP.benchmark("report", "model-zoo")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/model_zoo.py"


if REPORT.per_query:

    rule per_query_plots:
        input:
            sorted(
                {
                    cell.metrics
                    for cell in REPORT.cells
                    if cell.row in REPORT.per_query or cell.row == REPORT.settings.baseline
                }
            ),
            tests=ZOO["tests"],
        output:
            **{
                row: report(
                    png,
                    caption="../workflow/report/per-query.rst",
                    category="2. Plots",
                    subcategory="Per query against the baseline",
                    labels={"plot": "per-query scatter", "system": REPORT.label(row)},
                )
                for row, png in REPORT.per_query.items()
            },
        params:
            spec=REPORT,
        log:
            EXP.log("report", "per-query-plots"),
        benchmark:
            EXP.benchmark("report", "per-query-plots")
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/per_query_plots.py"


rule loss_curve:
    input:
        loss=f"{EXP.root}/models/{{model}}/loss.csv",
    output:
        png=report(
            loss_png(EXP.root, "{model}"),
            caption="../workflow/report/loss.rst",
            category="2. Plots",
            subcategory="Training loss",
            labels=lambda wildcards: {
                "plot": "training loss",
                "model": REPORT.losses[wildcards.model].label,
            },
        ),
    params:
        label=lambda wildcards: REPORT.losses[wildcards.model].label,
    log:
        EXP.log("report", "loss-{model}"),
    benchmark:
        EXP.benchmark("report", "loss-{model}")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/loss_curve.py"


rule benchmark_summary:
    input:
        # Last: every other job has written its benchmark file by then.
        [*REPORT.tables(), *REPORT.plots()],
    output:
        html=report(
            PAGES["benchmarks_html"],
            caption="../workflow/report/benchmarks.rst",
            category="3. Runtime and memory",
            labels={"item": "table"},
        ),
        png=report(
            PAGES["benchmarks_png"],
            caption="../workflow/report/benchmarks.rst",
            category="3. Runtime and memory",
            labels={"item": "chart"},
        ),
    params:
        folders=REPORT.benchmark_folders(),
    log:
        EXP.log("report", "benchmarks"),
    benchmark:
        EXP.benchmark("report", "benchmarks")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/benchmark_summary.py"


rule environment:
    output:
        html=report(
            PAGES["environment_html"],
            caption="../workflow/report/environment.rst",
            category="4. Configuration and software",
            labels={"item": "config and package versions"},
        ),
        config=report(
            PAGES["config"],
            caption="../workflow/report/environment.rst",
            category="4. Configuration and software",
            labels={"item": "config used (YAML)"},
        ),
    params:
        config=config,
    log:
        EXP.log("report", "environment"),
    benchmark:
        EXP.benchmark("report", "environment")
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/environment.py"


# Declares no inputs and no outputs, so Snakemake runs it whenever it is asked for and
# never schedules anything upstream; it names every metrics file that is missing.
rule tables:
    params:
        spec=REPORT,
    localrule: True
    log:
        EXP.log("report", "tables"),
    conda:
        "../envs/pipeline.yaml"
    script:
        "../workflow/scripts/tables.py"


if REPORT.tirex:
    TIREX_FILES = {
        "html": "table (HTML)",
        "md": "Markdown",
        "csv": "CSV with markers",
        "tex": "LaTeX (booktabs)",
        "tasks": "per task (CSV)",
        "tests": "significance tests (CSV)",
    }

    rule tirex_tables:
        input:
            REPORT.tirex.metrics_files(),
        output:
            **{
                kind: report(
                    REPORT.tirex.outputs[kind],
                    caption="../workflow/report/tirex.rst",
                    category="1. Tables",
                    subcategory="TIREx",
                    labels={"table": "TIREx", "file": label},
                )
                for kind, label in TIREX_FILES.items()
            },
            png=report(
                REPORT.tirex.outputs["png"],
                caption="../workflow/report/tirex.rst",
                category="2. Plots",
                subcategory="TIREx",
                labels={"plot": "nDCG@10 per corpus group"},
            ),
        params:
            spec=REPORT,
        log:
            EXP.log("report", "tirex"),
        benchmark:
            EXP.benchmark("report", "tirex")
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/tirex_tables.py"
