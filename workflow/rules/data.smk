# Raw data (demo generation for demo sources) and conversion to one Zarr store per source.


rule generate_demo:
    output:
        directory("data/raw/demo/{store}"),
    log:
        "results/logs/generate_demo/{store}.log",
    benchmark:
        "results/benchmarks/generate_demo/{store}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        cli=MAESTRO,
        job=lambda wc: job(wc.store, demo=config["sources"][wc.store]["demo"]),
    shell:
        "{params.cli} generate-demo --store {wildcards.store} --out {output:q} --job {params.job:q} > {log:q} 2>&1"


rule download:
    output:
        "data/raw/{store}/download_manifest.json",
    log:
        "results/logs/download/{store}.log",
    benchmark:
        "results/benchmarks/download/{store}.tsv"
    retries: 2
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wc, attempt: 1440 * attempt,
    params:
        cli=MAESTRO,
        manifest=lambda wc: config["sources"][wc.store]["manifest"],
        root=lambda wc, output: os.path.dirname(output[0]),
        unpinned=lambda wc: (
            "--allow-unpinned" if config["sources"][wc.store].get("allow_unpinned") else ""
        ),
    shell:
        # the raw files live beside the record, outside the declared output: an interrupted
        # download keeps its .part files and resumes on the next run
        "{params.cli} download --manifest {params.manifest:q} --out {params.root:q} {params.unpinned}"
        " > {log:q} 2>&1"


rule download_weights:
    # a baseline checkpoint (config weights.<name>, kind download), with the same verified,
    # resumable downloader as the datasets
    output:
        "data/weights/{checkpoint}/download_manifest.json",
    log:
        "results/logs/download_weights/{checkpoint}.log",
    retries: 2
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        cli=MAESTRO,
        manifest=lambda wc: weights_source(wc)["manifest"],
        root=lambda wc, output: os.path.dirname(output[0]),
        unpinned=lambda wc: "--allow-unpinned" if weights_source(wc).get("allow_unpinned") else "",
    shell:
        "{params.cli} download --manifest {params.manifest:q} --out {params.root:q} {params.unpinned}"
        " > {log:q} 2>&1"


rule convert:
    input:
        raw=raw_input,
    output:
        directory("results/data/{store}.zarr"),
    log:
        "results/logs/convert/{store}.log",
    benchmark:
        "results/benchmarks/convert/{store}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        cli=MAESTRO,
        job=lambda wc: job(wc.store, "convert"),
        raw=raw_dir,
    shell:
        "{params.cli} convert --store {wildcards.store} --raw {params.raw:q} --out {output:q}"
        " --workers {threads} --job {params.job:q} > {log:q} 2>&1"
