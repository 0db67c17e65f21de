"""The HTML pages of the Markdown tables (shown inline in the Snakemake report)."""

from maestro.report.html import markdown_to_html, write_markdown
from maestro.report.tables import markdown

MD = (
    "# Table 1: intra-dataset evaluation\n\nFloors first; `maestro report-tables` & <b>.\n\n"
    + markdown(
        ["Model", "TreeSat (wF1)"], [["MAESTRO", "55.0 ± 7.1 [41.2, 66.3]"], ["Trivial", "–"]]
    )
    + "\n- one\n- **two**\n"
)


def test_table_heading_paragraph_and_list_become_html():
    page = markdown_to_html(MD)
    assert "<title>Table 1: intra-dataset evaluation</title>" in page
    assert "<h1>Table 1: intra-dataset evaluation</h1>" in page
    assert "<th>Model</th><th>TreeSat (wF1)</th>" in page
    assert "<tr><td>MAESTRO</td><td>55.0 ± 7.1 [41.2, 66.3]</td></tr>" in page
    assert "<tr><td>Trivial</td><td>–</td></tr>" in page
    assert "<code>maestro report-tables</code> &amp; &lt;b&gt;." in page  # escaped, not markup
    assert "<ul><li>one</li><li><strong>two</strong></li></ul>" in page
    assert "|---|" not in page and "http" not in page  # no separator row, nothing external


def test_write_markdown_writes_both_files(tmp_path):
    write_markdown(tmp_path / "t.md", MD)
    assert (tmp_path / "t.md").read_text() == MD
    assert (tmp_path / "t.html").read_text() == markdown_to_html(MD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.html", "t.md"]  # no temp left
