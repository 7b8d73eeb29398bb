"""The MIMIC-CXR pretraining corpus: image-report pairs, and `data check` naming the reports it will skip."""

from __future__ import annotations

from pathlib import Path

from raw_layouts import write_mimic_cxr

from medvlp_bench.cli import main
from medvlp_bench_plugins.datasets import mimic_cxr
from medvlp_bench_plugins.datasets.mimic_cxr_corpus import MAX_LISTED, load_corpus


def _report(folder: Path, subject: str, study: str) -> Path:
    return mimic_cxr.report_path(folder, subject, study)


def _studies(metadata) -> list[tuple[str, str]]:
    return list(dict.fromkeys((subject, study) for _, subject, study, _ in metadata))


def test_check_names_the_studies_whose_reports_give_no_text(tmp_path):
    folder = tmp_path / "mimic-cxr-jpg"
    studies = _studies(write_mimic_cxr(folder)["metadata"])
    _report(folder, *studies[1]).write_text("")
    _report(folder, *studies[3]).write_text("FINAL REPORT\n EXAMINATION: CHEST (PA AND LAT)\n INDICATION: cough\n")
    (problem,) = mimic_cxr.check(folder)
    assert "2 studies" in problem and "1 empty" in problem and "1 no FINDINGS or IMPRESSION text" in problem
    assert f"s{studies[1][1]}" in problem and f"s{studies[3][1]}" in problem
    assert problem.index(f"s{studies[1][1]}") < problem.index(f"s{studies[3][1]}")
    assert f"s{studies[0][1]}" not in problem
    # the corpus drops exactly these studies' images
    kept = {Path(path).parent.name for _, split in load_corpus(folder).items()
            for path in split["image_path"]}
    assert kept == {f"s{study}" for _, study in studies} - {f"s{studies[1][1]}", f"s{studies[3][1]}"}


def test_check_lists_the_first_studies_and_counts_the_rest(tmp_path):
    folder = tmp_path / "mimic-cxr-jpg"
    studies = _studies(write_mimic_cxr(folder)["metadata"])
    for subject, study in studies:
        _report(folder, subject, study).write_text("IMPRESSION: Stable.")
    (problem,) = mimic_cxr.check(folder)
    assert f"{len(studies)} studies" in problem and f"{len(studies)} under 3 tokens" in problem
    listed = [study for _, study in studies if f"s{study} " in problem]
    assert listed == [study for _, study in studies][:MAX_LISTED]
    assert f"... and {len(studies) - MAX_LISTED} more" in problem


def test_data_check_prints_the_skipped_reports_instead_of_ok(tmp_path, capsys):
    folder = tmp_path / "mimic-cxr-jpg"
    studies = _studies(write_mimic_cxr(folder)["metadata"])
    assert main(["data", "check", "mimic_cxr", "--dataset-path", f"mimic_cxr={folder}"]) == 0
    assert "OK" in capsys.readouterr().out
    _report(folder, *studies[2]).write_text("  \n")
    assert main(["data", "check", "mimic_cxr", "--dataset-path", f"mimic_cxr={folder}"]) == 1
    out = capsys.readouterr().out
    assert "OK" not in out and f"s{studies[2][1]}" in out and "1 study" in out and "empty" in out
