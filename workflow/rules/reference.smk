# Reference rows per benchmark dataset: the trivial predictor (constant strategies fitted on
# the train labels) and a linear model on raw input features. No model is trained.


rule reference:
    input:
        store=store_path,
    output:
        metrics="results/reference/{dataset}/{kind}/metrics.json",
        provenance="results/reference/{dataset}/{kind}/provenance.json",
    log:
        "results/logs/reference/{dataset}/{kind}.log",
    benchmark:
        "results/benchmarks/reference/{dataset}/{kind}.tsv"
    wildcard_constraints:
        kind="trivial|linear",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        cli=MAESTRO,
        job=lambda wc: job(store_of(wc), dataset=wc.dataset),
    shell:
        "{params.cli} reference --kind {wildcards.kind} --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --out {output.metrics:q} --job {params.job:q} > {log:q} 2>&1"
