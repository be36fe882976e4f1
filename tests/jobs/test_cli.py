"""The job command line: dated jobs refuse to run without a date."""

from __future__ import annotations

import pytest


def test_dated_jobs_refuse_to_run_without_a_date(capsys: pytest.CaptureFixture[str]) -> None:
    from campaignlake.jobs.cli import main

    for job in ("build_features", "train_response_model", "score_customers"):
        assert main([job, "--env", "local"]) == 1
        assert "--date YYYY-MM-DD is required" in capsys.readouterr().err
