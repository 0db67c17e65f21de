# Downstream training per (dataset, cell, seed): probe the frozen encoder, fine-tune the probed
# model, and train the same architecture from scratch (the supervised ViT baseline) and probe
# it at random initialization (the floor a pretrained probe must beat).


rule probe:
    input:
        store=store_path,
        init="results/pretrain/{dataset}/{cell}/seed~{seed}/model.pt",
    output:
        **_downstream_outputs("probe"),
    log:
        "results/logs/probe/{dataset}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/probe/{dataset}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        job=lambda wc: job(
            store_of(wc), "model", "runtime", phase="probe", cell=cell_of(wc), dataset=wc.dataset
        ),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode probe --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --init {input.init:q} --out-dir {params.out_dir:q}"
        " --seed {wildcards.seed} --threads {threads} --gpus {params.gpus}"
        " --job {params.job:q} > {log:q} 2>&1"


rule finetune_model:
    input:
        store=store_path,
        init=finetune_init,
    output:
        **_downstream_outputs("finetune"),
    log:
        "results/logs/finetune/{dataset}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 480 * attempt,
    params:
        job=lambda wc: job(
            store_of(wc),
            "model",
            "runtime",
            phase="finetune",
            cell=cell_of(wc),
            dataset=wc.dataset,
        ),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode finetune --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --init {input.init:q} --out-dir {params.out_dir:q}"
        " --seed {wildcards.seed} --threads {threads} --gpus {params.gpus}"
        " --job {params.job:q} > {log:q} 2>&1"


rule train_scratch:
    input:
        store=store_path,
    output:
        **_downstream_outputs("scratch"),
    log:
        "results/logs/scratch/{dataset}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/scratch/{dataset}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 480 * attempt,
    params:
        job=lambda wc: job(
            store_of(wc), "model", "runtime", phase="scratch", cell=cell_of(wc), dataset=wc.dataset
        ),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode scratch --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --out-dir {params.out_dir:q} --seed {wildcards.seed}"
        " --threads {threads} --gpus {params.gpus} --job {params.job:q} > {log:q} 2>&1"


rule probe_random:
    input:
        store=store_path,
    output:
        **_downstream_outputs("probe_random"),
    log:
        "results/logs/probe_random/{dataset}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/probe_random/{dataset}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        job=lambda wc: job(
            store_of(wc), "model", "runtime", phase="probe", cell=cell_of(wc), dataset=wc.dataset
        ),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode probe --random-init --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --out-dir {params.out_dir:q} --seed {wildcards.seed}"
        " --threads {threads} --gpus {params.gpus} --job {params.job:q} > {log:q} 2>&1"
