# MAE pretraining: one job per (dataset, ablation cell, seed), on the train + val splits.


rule pretrain_mae:
    input:
        unpack(band_groups_input),
        store=store_path,
    output:
        model=f"results/pretrain/{{dataset}}/{CELL}/seed~{{seed}}/model.pt",
        history=f"results/pretrain/{{dataset}}/{CELL}/seed~{{seed}}/history.csv",
        metrics=f"results/pretrain/{{dataset}}/{CELL}/seed~{{seed}}/metrics.json",
        recon=f"results/pretrain/{{dataset}}/{CELL}/seed~{{seed}}/reconstruction.npz",
        provenance=f"results/pretrain/{{dataset}}/{CELL}/seed~{{seed}}/provenance.json",
    params:
        job=lambda wc: job(
            store_of(wc), "model", "runtime", phase="pretrain", cell=cell_of(wc), dataset=wc.dataset
        ),
        groups=band_groups_arg,
        out_dir=lambda wc, output: os.path.dirname(output.model),
    log:
        f"results/logs/pretrain/{{dataset}}/{CELL}/seed~{{seed}}.log",
    benchmark:
        f"results/benchmarks/pretrain/{{dataset}}/{CELL}/seed~{{seed}}.tsv"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=lambda wc, attempt: 600 * attempt,
    shell:
        "{MAESTRO} pretrain --dataset {wildcards.dataset} --store-path {input.store}"
        " --out-dir {params.out_dir} --seed {wildcards.seed} --threads {threads}"
        " --gpus {resources.gpu} {params.groups} --job {params.job:q} > {log} 2>&1"
