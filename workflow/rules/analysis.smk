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
    params:
        cli=MAESTRO,
        job=lambda wc: job(wc.store, "analysis"),
    log:
        "results/logs/band_groups/{store}.log",
    benchmark:
        "results/benchmarks/band_groups/{store}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/maestro.yaml"
    shell:
        "{params.cli} analyze-bands --store-path {input.store:q} --out-json {output.groups:q}"
        " --out-png {output.figure:q} --job {params.job:q} > {log:q} 2>&1"
