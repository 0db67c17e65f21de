# MAE pretraining: one job per (dataset, ablation cell, seed), on the train + val splits.


rule pretrain_mae:
    input:
        unpack(band_groups_input),
        store=store_path,
    output:
        model="results/pretrain/{dataset}/{cell}/seed~{seed}/model.pt",
        history="results/pretrain/{dataset}/{cell}/seed~{seed}/history.csv",
        metrics="results/pretrain/{dataset}/{cell}/seed~{seed}/metrics.json",
        recon="results/pretrain/{dataset}/{cell}/seed~{seed}/reconstruction.npz",
        provenance="results/pretrain/{dataset}/{cell}/seed~{seed}/provenance.json",
    log:
        "results/logs/pretrain/{dataset}/{cell}/seed~{seed}.log",
    benchmark:
        "results/benchmarks/pretrain/{dataset}/{cell}/seed~{seed}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: TRAIN_THREADS
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 600 * attempt,
    params:
        job=lambda wc: job(
            store_of(wc),
            "model",
            "runtime",
            phase="pretrain",
            cell=cell_of(wc),
            dataset=wc.dataset,
        ),
        groups=band_groups_arg,
        out_dir=lambda wc, output: os.path.dirname(output.model),
        launch=launcher,
        gpus=gpu_count,
    shell:
        "{params.launch} pretrain --dataset {wildcards.dataset} --store-path {input.store:q}"
        " --out-dir {params.out_dir:q} --seed {wildcards.seed} --threads {threads}"
        " --gpus {params.gpus} {params.groups} --job {params.job:q} > {log:q} 2>&1"
