# Cross-dataset runs (the paper's Table 2): the reference cell pretrained on a source dataset
# (S2-NAIP urban, FLAIR-HUB), then probed and fine-tuned on a target dataset. The target's
# transfer overrides (config `transfer`) set model-side settings such as tokenizer sharing
# (`embed_key`) or input sizes so that the source's weights fit. A transfer entry with
# `weights` starts from a released IGNF/MAESTRO checkpoint instead (imported once).


rule import_checkpoint:
    # a released MAESTRO checkpoint (config weights.<name>) as our pretrained model.pt
    input:
        weights=lambda wc: weights_input(wc.checkpoint),
    output:
        model="results/imported/{checkpoint}/model.pt",
    log:
        "results/logs/import_checkpoint/{checkpoint}.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        cli=MAESTRO,
        ckpt=lambda wc: weights_dir(wc.checkpoint),
        dataset=released_source,
        job=lambda wc: job(CATALOG.dataset(released_source(wc)).store.name),
    shell:
        "{params.cli} import-checkpoint --ckpt {params.ckpt:q} --dataset {params.dataset}"
        " --out {output.model:q} --job {params.job:q} > {log:q} 2>&1"


rule transfer_probe:
    input:
        store=store_path,
        init=transfer_init,
    output:
        **_transfer_outputs("probe"),
    log:
        "results/logs/transfer_probe/{dataset}/from~{source}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/transfer_probe/{dataset}/from~{source}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        job=lambda wc: _transfer_job(wc, "probe"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode probe --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --init {input.init:q} --out-dir {params.out_dir:q}"
        " --seed {wildcards.seed} --threads {threads} --gpus {params.gpus}"
        " --job {params.job:q} > {log:q} 2>&1"


rule transfer_finetune:
    input:
        store=store_path,
        init=transfer_finetune_init,
    output:
        **_transfer_outputs("finetune"),
    log:
        "results/logs/transfer_finetune/{dataset}/from~{source}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/transfer_finetune/{dataset}/from~{source}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 480 * attempt,
    params:
        job=lambda wc: _transfer_job(wc, "finetune"),
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} downstream --mode finetune --dataset {wildcards.dataset}"
        " --store-path {input.store:q} --init {input.init:q} --out-dir {params.out_dir:q}"
        " --seed {wildcards.seed} --threads {threads} --gpus {params.gpus}"
        " --job {params.job:q} > {log:q} 2>&1"
