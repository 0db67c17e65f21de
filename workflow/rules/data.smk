# Raw data (demo generation for demo sources) and conversion to one Zarr store per source.


rule generate_demo:
    output:
        directory("data/raw/demo/{store}"),
    params:
        job=lambda wc: job(wc.store, demo=config["sources"][wc.store]["demo"]),
    log:
        "results/logs/generate_demo/{store}.log",
    benchmark:
        "results/benchmarks/generate_demo/{store}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{MAESTRO} generate-demo --store {wildcards.store} --out {output} --job {params.job:q} > {log} 2>&1"


rule convert:
    input:
        raw=raw_root,
    output:
        directory("results/data/{store}.zarr"),
    params:
        job=lambda wc: job(wc.store, "convert"),
    log:
        "results/logs/convert/{store}.log",
    benchmark:
        "results/benchmarks/convert/{store}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "{MAESTRO} convert --store {wildcards.store} --raw {input.raw} --out {output}"
        " --job {params.job:q} > {log} 2>&1"
