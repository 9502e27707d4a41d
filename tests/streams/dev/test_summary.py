"""The demo's summary table, as a pure function of scraped metrics, and its screen."""

from __future__ import annotations

import io
import math

import pytest

from streams.dev.ground_truth import ModelTally
from streams.dev.label_sources import ReviewerTally
from streams.dev.scrape import Samples
from streams.dev.summary import (
    LEGEND,
    ModelRow,
    ReviewerRow,
    SummaryScreen,
    model_rows,
    render_table,
    reviewer_rows,
)


def _samples(churn_processed: float, fraud_processed: float) -> Samples:
    return {
        "vigil_events_total": [
            ({"model": "churn", "outcome": "processed"}, churn_processed),
            ({"model": "churn", "outcome": "dead_letter"}, 4.0),
            ({"model": "fraud", "outcome": "processed"}, fraud_processed),
            ({"model": "fraud", "outcome": "dead_letter"}, 0.0),
            ({"model": "_other", "outcome": "processed"}, 0.0),
            ({"model": "_other", "outcome": "dead_letter"}, 0.0),
        ],
        "vigil_escalations_total": [
            ({"model": "churn", "reason": "low_confidence"}, 30.0),
            ({"model": "churn", "reason": "drift"}, 2.0),
            ({"model": "churn", "reason": "audit"}, 3.0),
            ({"model": "fraud", "reason": "low_confidence"}, 7.0),
        ],
        "vigil_escalations_suppressed_total": [
            ({"model": "churn"}, 5.0),
            ({"model": "fraud"}, 0.0),
        ],
        "vigil_drift_active": [
            ({"model": "churn", "signal": "x1"}, 1.0),
            ({"model": "churn", "signal": "confidence"}, 1.0),
            ({"model": "churn", "signal": "x2"}, 0.0),
            ({"model": "fraud", "signal": "x1"}, 0.0),
        ],
        "vigil_accuracy": [({"model": "churn"}, 0.8125), ({"model": "fraud"}, float("nan"))],
        "vigil_estimated_accuracy": [({"model": "churn"}, 0.79)],
        "vigil_autoaccept_error": [({"model": "churn"}, 0.142), ({"model": "fraud"}, math.nan)],
        "vigil_autoaccept_error_upper": [({"model": "churn"}, 0.171)],
    }


#: The demo's ground truth. churn: 1000 events, 800 right; 200 escalated by a rule, of
#: which 110 right; 300 labels sent, 201 of them for right predictions. fraud: 10 events,
#: 5 right, nothing escalated or labelled yet.
TALLIES = {"churn": ModelTally(1000, 800, 200, 110, 300, 201), "fraud": ModelTally(10, 5)}


def test_rows_per_model_from_two_scrapes() -> None:
    rows = model_rows(_samples(1200, 600), before=_samples(1000, 500), seconds=2.0, tallies=TALLIES)
    assert rows == [
        ModelRow(
            model="churn",
            events_per_second=100.0,
            escalations=35.0,
            suppressed=5.0,
            dead_letters=4.0,
            drifting=("confidence", "x1"),
            accuracy=0.8125,
            estimated_accuracy=0.79,
            audits=3.0,
            autoaccept_error=0.142,
            autoaccept_error_upper=0.171,
            true_accuracy=0.8,
            true_autoaccept_error=0.1375,  # (800 - 110 right of 1000 - 200 accepted) wrong
            labelled_accuracy=0.67,
        ),
        ModelRow(
            model="fraud",
            events_per_second=50.0,
            escalations=7.0,
            suppressed=0.0,
            dead_letters=0.0,
            drifting=(),
            accuracy=None,  # NaN: no labelled window yet
            estimated_accuracy=None,  # no series
            audits=0.0,
            autoaccept_error=None,  # NaN
            autoaccept_error_upper=None,  # no series
            true_accuracy=0.5,
            true_autoaccept_error=0.5,
            labelled_accuracy=None,  # no label sent
        ),
    ]


def test_first_scrape_has_no_rate_and_a_restart_no_negative_rate() -> None:
    assert [r.events_per_second for r in model_rows(_samples(10, 10))] == [None, None]
    restarted = model_rows(_samples(10, 10), before=_samples(1000, 500), seconds=2.0)
    assert [r.events_per_second for r in restarted] == [0.0, 0.0]


def test_table_text() -> None:
    rows = model_rows(_samples(1200, 600), before=_samples(1000, 500), seconds=2.0, tallies=TALLIES)
    assert render_table("[    42s] sent 9000", rows) == (
        "[    42s] sent 9000\n"
        "model  events/s  escalations  audits  suppressed  dead letters  in drift\n"
        "churn     100.0           35       3           5             4  confidence, x1\n"
        "fraud      50.0            7       0           0             0  -\n"
        "\n"
        "       accuracy                            auto-accept error\n"
        "model   true  vigil  labelled  label-free   true  vigil  95% upper\n"
        "churn  0.800  0.812     0.670       0.790  0.138  0.142      0.171\n"
        "fraud  0.500      -         -           -  0.500      -          -"
    )


#: The team's true counts; "ana" has not labelled yet. "pat" labels in Label Studio.
REVIEWER_TALLIES = {
    "careless-carl": ReviewerTally(labels=200, wrong=90, gold=20),
    "bruno": ReviewerTally(labels=180, wrong=9, gold=18),
    "ana": ReviewerTally(),
}
GOLD: Samples = {
    "vigil_reviewer_gold_answers_total": [
        ({"reviewer": "careless-carl", "outcome": "right"}, 11.0),
        ({"reviewer": "careless-carl", "outcome": "wrong"}, 9.0),
        ({"reviewer": "bruno", "outcome": "right"}, 18.0),
        ({"reviewer": "pat", "outcome": "wrong"}, 1.0),
        ({"reviewer": "pat", "outcome": "right"}, 3.0),
    ]
}


def test_rows_per_reviewer_from_the_team_and_the_gold_scores() -> None:
    assert reviewer_rows(GOLD, REVIEWER_TALLIES) == [
        ReviewerRow("careless-carl", 200, 0.45, 20.0, 0.55),
        ReviewerRow("bruno", 180, 0.05, 18.0, 1.0),
        ReviewerRow("ana", 0, None, 0.0, None),
        ReviewerRow("pat", None, None, 4.0, 0.75),  # a person: scored, not the demo's
    ]
    assert reviewer_rows({}, {}) == []


def test_the_reviewer_table_follows_the_others_and_leaves_out_the_idle() -> None:
    rows = model_rows(_samples(1200, 600), before=_samples(1000, 500), seconds=2.0, tallies=TALLIES)
    text = render_table("head", rows, reviewer_rows(GOLD, REVIEWER_TALLIES))
    assert text.split("\n\n")[2] == (
        "                       error  gold (vigil)\n"
        "reviewer       labels   true  answers  accuracy\n"
        "careless-carl     200  0.450       20     0.550\n"
        "bruno             180  0.050       18     1.000\n"
        "pat                 -      -        4     0.750"
    )
    assert render_table("head", rows, reviewer_rows({}, {"ana": ReviewerTally()})) == (
        render_table("head", rows)
    )


def test_models_without_quality_figures_are_left_out_of_the_quality_table() -> None:
    rows = model_rows(_samples(1200, 600))  # no tallies: fraud has no figure, churn has
    quality = render_table("head", rows).split("\n\n", 1)[1]
    assert "\nchurn " in quality and "fraud" not in quality
    only_traffic = render_table("head", [r for r in rows if r.model == "fraud"])
    assert "\n\n" not in only_traffic and "fraud" in only_traffic


def test_the_legend_names_every_quality_column() -> None:
    for column in ("true", "vigil", "labelled", "label-free", "auto-accept error", "95% upper"):
        assert column in LEGEND
    assert max(len(line) for line in LEGEND.splitlines()) <= 80  # fits a plain terminal


def test_table_without_rows_is_the_head_line() -> None:
    assert render_table("[     2s] sent 600 | worker starting ...", []) == (
        "[     2s] sent 600 | worker starting ..."
    )


def test_screen_redraws_in_place_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "12")
    out = io.StringIO()
    screen = SummaryScreen(out, live=True)
    screen.show("first line is long\nsecond")
    screen.show("third")
    assert (
        out.getvalue()
        == (
            "\x1b[J" + "first line i\nsecond\n"  # cut to the width: no line wraps
            "\x1b[2F\x1b[J" + "third\n"  # two lines up, cleared, redrawn
        )
    )


def test_screen_prints_plain_blocks_elsewhere() -> None:
    out = io.StringIO()
    screen = SummaryScreen(out)  # StringIO is no terminal
    assert not screen.live
    screen.show("a\nb")
    screen.show("c")
    assert out.getvalue() == "a\nb\n\nc\n\n"
