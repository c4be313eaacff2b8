# Downloads: run files named in config `downloads` (the paper's Zenodo records), MD5-checked
# against the configured MD5, or where none is published against the one recorded in
# checksums/<file>.md5 at the first download (rank_distillm.data.download.fetch).
from rank_distillm.data.download import checksum_path

DOWNLOADS = config["downloads"]

if DOWNLOADS:

    rule download:
        output:
            "resources/{file}",
        wildcard_constraints:
            file=_alternatives(DOWNLOADS),
        params:
            url=lambda wildcards: DOWNLOADS[wildcards.file]["url"],
            md5=lambda wildcards: DOWNLOADS[wildcards.file].get("md5"),
            checksum_file=lambda wildcards: checksum_path(wildcards.file),
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
