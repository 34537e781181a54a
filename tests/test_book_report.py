"""The introduction's tally of verdicts (memgen.book.report.tally)."""

from memgen.book import report
from memgen.book.findings import Findings
from memgen.verdicts import Verdict


def test_the_tally_counts_each_kind_of_claim_for_both_columns():
    """The intro's tally: Liu & Lu's claims apart from the book's controls, its questions beyond
    the paper and the neighbouring papers' claims; shipped and this build's verdicts side by side."""
    def F(*vs):
        return Findings("x", {f"k{i}": Verdict(c, w, "") for i, (c, w) in enumerate(vs)}, {}, None)

    entries = [("05_frequency_filtration", "5", F(("G beats raw", "Reproduced"), ("control: vote", "Contradicted"))),
               ("13_progress_measures", "13", F(("rule forms", "Not shown"),)),
               ("generated/07_x", "7", F(("beyond the paper: tied", "Reproduced"),))]
    shipped = {"05_frequency_filtration": F(("G beats raw", "Not shown"), ("control: vote", "Contradicted"))}
    rows = {r["claims"]: r for r in report.tally(entries, shipped)}
    assert list(rows) == [*report.CLAIM_KINDS, "all"]
    assert rows["Liu & Lu's claims"] == {"claims": "Liu & Lu's claims", "count": 1, "shipped ✓": 0, "shipped –": 1,
                                         "shipped ✗": 0, "shipped: not shipped": 0, "this build ✓": 1,
                                         "this build –": 0, "this build ✗": 0}
    assert rows["the book's controls"]["shipped ✗"] == rows["the book's controls"]["this build ✗"] == 1
    assert rows["other papers (chapters 12–16)"]["shipped: not shipped"] == 1
    assert rows["all"]["count"] == 4 and rows["all"]["this build ✓"] == 2
    everything = report.tally(entries[:1], shipped)
    assert all("shipped: not shipped" not in r for r in everything)
    alone = report.tally(entries, {})
    assert all(not any(k.startswith("shipped") for k in r) for r in alone)
    assert all("this build: not judged" not in r for r in rows.values())


def test_a_claim_judged_on_the_shipped_results_only_is_counted_apart():
    """Chapter 6 judges the partition at α = 0.2 on shipped records only: the tally counts that
    claim with its shipped verdict, and as not judged by this build."""
    def F(**vs):
        return Findings("x", {k: Verdict(c, w, "") for k, (c, w) in vs.items()}, {}, None)

    entries = [("06_partition", "6", F(k=("f^G beats random", "Not shown")))]
    shipped = {"06_partition": F(k=("f^G beats random", "Not shown"), k_alpha02=("At α = 0.2, f^G", "Reproduced"))}
    everything = {r["claims"]: r for r in report.tally(entries, shipped)}["all"]
    assert everything["count"] == 2 and everything["shipped ✓"] == everything["this build: not judged"] == 1
    assert everything["this build –"] == everything["shipped –"] == 1
