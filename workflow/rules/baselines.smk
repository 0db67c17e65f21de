# Baseline foundation models (config baselines: the baselines sheet; docs/baselines.md): per
# (dataset, baseline row, seed), a probe of the frozen backbone, then a fine-tuning from it.


rule baseline_probe:
    input:
        store=store_path,
        weights=baseline_weights,
    output:
        **_baseline_outputs("probe"),
    log:
        "results/logs/baseline_probe/{dataset}/{baseline}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/baseline_probe/{dataset}/{baseline}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        job=lambda wc: job(store_of(wc), "runtime", phase="probe", dataset=wc.dataset),
        spec=baseline_spec,
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode probe --baseline {params.spec:q}"
        " --dataset {wildcards.dataset} --store-path {input.store:q} --out-dir {params.out_dir:q}"
        " --seed {wildcards.seed} --threads {threads} --gpus {params.gpus}"
        " --job {params.job:q} > {log:q} 2>&1"


rule baseline_finetune:
    input:
        store=store_path,
        init="results/baseline/probe/{dataset}/{baseline}/seed~{seed}/model.pt",
    output:
        **_baseline_outputs("finetune"),
    log:
        "results/logs/baseline_finetune/{dataset}/{baseline}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/baseline_finetune/{dataset}/{baseline}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 480 * attempt,
    params:
        job=lambda wc: job(store_of(wc), "runtime", phase="finetune", dataset=wc.dataset),
        spec=baseline_spec,
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode finetune --baseline {params.spec:q}"
        " --dataset {wildcards.dataset} --store-path {input.store:q} --init {input.init:q}"
        " --out-dir {params.out_dir:q} --seed {wildcards.seed} --threads {threads}"
        " --gpus {params.gpus} --job {params.job:q} > {log:q} 2>&1"
