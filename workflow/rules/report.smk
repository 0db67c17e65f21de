# Tables and figures from the files training wrote; `snakemake --report report.html` collects
# them (with the captions in workflow/report/) into one HTML report.


rule tables_all:
    input:
        metrics=downstream_metrics(),
    output:
        **{
            # the HTML page is shown inline in the report; .md/.csv/.tex are the files to use
            f"{t}_{ext}": (
                _report(f"results/tables/{t}.{ext}", t, "Tables", t)
                if ext == "html"
                else f"results/tables/{t}.{ext}"
            )
            for t in TABLES
            if t != "compute"
            for ext in ("md", "html", "csv", "tex")
        },
        per_class_md="results/tables/per_class.md",
        per_class_html=_report("results/tables/per_class.html", "per_class", "Tables", "per_class"),
        per_class_csv="results/tables/per_class.csv",
    log:
        "results/logs/report/tables.log",
    benchmark:
        "results/benchmarks/report/tables.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
        reference=PLAN.reference.id,
    shell:
        "{params.cli} report-tables --metrics {input.metrics:q} --reference {params.reference:q}"
        " --out-dir results/tables > {log:q} 2>&1"


rule signal_check:
    input:
        metrics=downstream_metrics(),
    output:
        md="results/tables/signal.md",
        html=_report("results/tables/signal.html", "signal", "Tables", "signal"),
        json="results/tables/signal.json",
    log:
        "results/logs/report/signal.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
        config=lambda wc: json.dumps(
            {
                k: config[k]
                for k in ("datasets", "seeds", "variants", "transfer", "probe")
                if k in config
            }
        ),
    shell:
        # the report of the margins; `maestro check-signal` without --no-fail is the strict check
        "{params.cli} check-signal --config-json {params.config:q} --results results"
        " --out results/tables/signal --no-fail > {log:q} 2>&1"


rule dvc_metrics:
    input:
        # the CSVs of the tables that `dvc metrics show` reads
        [f"results/tables/{t}.csv" for t in TABLES if t != "compute"],
    output:
        "results/tables/summary.json",
    log:
        "results/logs/report/dvc_metrics.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} dvc-metrics --tables results/tables --out {output:q} > {log:q} 2>&1"


rule table_compute:
    input:
        # every job has finished when the tables and figures exist; their benchmarks are read
        rules.tables_all.output,
        "results/figures/pretrain_loss.png",
    output:
        md="results/tables/compute.md",
        html=_report("results/tables/compute.html", "compute", "Tables", "compute"),
        csv="results/tables/compute.csv",
        tex="results/tables/compute.tex",
    log:
        "results/logs/report/compute.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} report-compute --results results --out results/tables/compute > {log:q} 2>&1"


rule figure_pretrain_loss:
    input:
        histories=PLAN.pretrain("history.csv"),
        metrics=PLAN.pretrain("metrics.json"),
    output:
        _report("results/figures/pretrain_loss.png", "pretrain_loss", "Figures", "pretraining"),
    log:
        "results/logs/report/pretrain_loss.log",
    benchmark:
        "results/benchmarks/report/pretrain_loss.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} report-figures --kind loss --inputs {input.histories:q} --out {output:q} > {log:q} 2>&1"


rule figure_downstream_curves:
    input:
        reference_histories(),
    output:
        _report(
            "results/figures/downstream_curves.png",
            "downstream_curves",
            "Figures",
            "downstream training",
        ),
    log:
        "results/logs/report/downstream_curves.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} report-figures --kind downstream --inputs {input:q} --out {output:q}"
        " > {log:q} 2>&1"


rule figure_ablations:
    input:
        expand("results/tables/ablation_{axis}.csv", axis=["norm", "spectral", "fusion", "dates"]),
    output:
        _report("results/figures/ablations.png", "ablations", "Figures", "ablations"),
    log:
        "results/logs/report/ablations.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} report-figures --kind ablation --inputs {input:q} --out {output:q} > {log:q} 2>&1"


rule figure_table1:
    input:
        "results/tables/table1.csv",
    output:
        _report("results/figures/table1.png", "table1_figure", "Figures", "table 1"),
    log:
        "results/logs/report/table1_figure.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
    shell:
        "{params.cli} report-figures --kind table1 --inputs {input:q} --out {output:q} > {log:q} 2>&1"


rule figure_reconstruction:
    input:
        f"results/pretrain/{{dataset}}/{PLAN.reference.id}/seed~{SEEDS[0]}/reconstruction.npz",
    output:
        _report(
            "results/figures/reconstruction_{dataset}.png",
            "reconstruction",
            "Figures",
            "reconstructions",
        ),
    log:
        "results/logs/report/reconstruction_{dataset}.log",
    benchmark:
        "results/benchmarks/report/reconstruction_{dataset}.tsv"
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
        title=lambda wc: f"{CATALOG.dataset(wc.dataset).title}: first test crop, first date",
    shell:
        "{params.cli} report-figures --kind reconstruction --inputs {input:q} --out {output:q}"
        " --title {params.title:q} > {log:q} 2>&1"


rule figure_segmentation:
    input:
        f"results/finetune/{{dataset}}/{PLAN.reference.id}/seed~{SEEDS[0]}/predictions.npz",
    output:
        _report(
            "results/figures/segmentation_{dataset}.png", "segmentation", "Figures", "segmentation"
        ),
    log:
        "results/logs/report/segmentation_{dataset}.log",
    conda:
        "../envs/maestro.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cli=MAESTRO,
        title=lambda wc: f"{CATALOG.dataset(wc.dataset).title}: fine-tuned reference cell, test crops",
    shell:
        "{params.cli} report-figures --kind segmentation --inputs {input:q} --out {output:q}"
        " --title {params.title:q} > {log:q} 2>&1"
