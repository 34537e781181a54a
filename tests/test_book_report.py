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
