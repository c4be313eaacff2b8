# Downloads: run files named in config `downloads` (the paper's Zenodo records), MD5-checked.

DOWNLOADS = config["downloads"]

if DOWNLOADS:

    rule download:
        output:
            "resources/{file}",
        wildcard_constraints:
            file=_alternatives(DOWNLOADS),
        params:
            url=lambda wildcards: DOWNLOADS[wildcards.file]["url"],
            md5=lambda wildcards: DOWNLOADS[wildcards.file]["md5"],
        localrule: True
        retries: 2
        log:
            "resources/logs/{file}.log",
        benchmark:
            "resources/benchmarks/{file}.tsv"
        conda:
            "../envs/pipeline.yaml"
        script:
            "../workflow/scripts/download.py"
