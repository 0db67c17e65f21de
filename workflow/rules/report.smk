# Tables and figures from the files training wrote.


rule table1:
    input:
        downstream_metrics(),
    output:
        md="results/tables/table1.md",
        csv="results/tables/table1.csv",
    log:
        "results/logs/report/table1.log",
    benchmark:
        "results/benchmarks/report/table1.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{MAESTRO} report-table --inputs {input} --out-md {output.md} --out-csv {output.csv}"
        " > {log} 2>&1"


rule figure_pretrain_loss:
    input:
        histories=cell_paths("pretrain", "history.csv"),
        metrics=cell_paths("pretrain", "metrics.json"),
    output:
        "results/figures/pretrain_loss.png",
    log:
        "results/logs/report/pretrain_loss.log",
    benchmark:
        "results/benchmarks/report/pretrain_loss.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{MAESTRO} report-figures --kind loss --inputs {input.histories} --out {output} > {log} 2>&1"


rule figure_reconstruction:
    input:
        lambda wc: expand(
            f"results/pretrain/{wc.dataset}/{{cell}}/seed~{SEEDS[0]}/reconstruction.npz",
            cell=CELLS[:1],
        ),
    output:
        "results/figures/reconstruction_{dataset}.png",
    params:
        title=lambda wc: f"{CATALOG.dataset(wc.dataset).title}: first test crop, first date",
    log:
        "results/logs/report/reconstruction_{dataset}.log",
    benchmark:
        "results/benchmarks/report/reconstruction_{dataset}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{MAESTRO} report-figures --kind reconstruction --inputs {input} --out {output}"
        " --title {params.title:q} > {log} 2>&1"
