# Band-group analysis: correlations of each modality's bands over the train split, clustered.


rule band_groups:
    input:
        store="results/data/{store}.zarr",
    output:
        groups="results/analysis/{store}/band_groups.json",
        figure=report(
            "results/figures/correlation_{store}.png",
            caption="../report/correlation.rst",
            category="Figures",
            subcategory="band groups",
        ),
    log:
        "results/logs/band_groups/{store}.log",
    benchmark:
        "results/benchmarks/band_groups/{store}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cli=MAESTRO,
        job=lambda wc: job(wc.store, "analysis"),
    shell:
        "{params.cli} analyze-bands --store-path {input.store:q} --out-json {output.groups:q}"
        " --out-png {output.figure:q} --job {params.job:q} > {log:q} 2>&1"
