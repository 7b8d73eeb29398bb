"""MIMIC-CXR-JPG plugin: check() on the CSVs (plain or gzipped), sampled JPEGs and reports."""

from __future__ import annotations

import gzip
import shutil

import pluggy
import pytest
from raw_layouts import write_csv, write_mimic_cxr

from medvlp_bench import hookspecs
from medvlp_bench_plugins.datasets import mimic_cxr

SPLIT = "mimic-cxr-2.0.0-split.csv"
METADATA = "mimic-cxr-2.0.0-metadata.csv"


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "mimic-cxr-jpg"
    return folder, write_mimic_cxr(folder)


def test_check_accepts_a_valid_layout(layout):
    folder, _ = layout
    assert mimic_cxr.check(folder) == []


def test_check_accepts_gzipped_csvs(layout):
    folder, _ = layout
    for name in (METADATA, SPLIT, "mimic-cxr-2.0.0-chexpert.csv"):
        with open(folder / name, "rb") as source, gzip.open(folder / f"{name}.gz", "wb") as target:
            shutil.copyfileobj(source, target)
        (folder / name).unlink()
    assert mimic_cxr.check(folder) == []


def test_paths_follow_the_raw_layout(tmp_path):
    assert mimic_cxr.image_path(tmp_path, "10000032", "50414267", "abc") == (
        tmp_path / "files/p10/p10000032/s50414267/abc.jpg"
    )
    assert mimic_cxr.report_path(tmp_path, "10000032", "50414267") == tmp_path / "files/p10/p10000032/s50414267.txt"


def test_check_reports_missing_csv_jpeg_and_report(layout):
    folder, written = layout
    dicom, subject, study, _ = written["metadata"][5]
    mimic_cxr.image_path(folder, subject, study, dicom).unlink()
    mimic_cxr.report_path(folder, subject, study).unlink()
    (folder / SPLIT).unlink()
    problems = mimic_cxr.check(folder)
    assert problems == [
        f"{folder / SPLIT}: file not found (nor {SPLIT}.gz)",
        f"{folder / METADATA}, row 6: report file not found: {mimic_cxr.report_path(folder, subject, study)}",
        f"{folder / METADATA}, row 7: image file not found: {mimic_cxr.image_path(folder, subject, study, dicom)}",
    ]


def test_check_reports_bad_values_and_headers(layout):
    folder, written = layout
    rows = [[dicom, study, subject, "train"] for dicom, subject, study, _ in written["metadata"]]
    rows[2][3] = "training"
    rows[4][2] = "p10"
    write_csv(folder / SPLIT, ("dicom_id", "study_id", "subject_id", "split"), rows)
    write_csv(folder / "mimic-cxr-2.0.0-chexpert.csv", ("subject", "study_id"), [["1", "2"]])
    problems = mimic_cxr.check(folder)
    assert problems[0] == f"{folder / SPLIT}, row 4: split must be one of ('train', 'validate', 'test'), got 'training'"
    assert problems[1] == f"{folder / SPLIT}, row 6: subject_id must be a number, got 'p10'"
    assert problems[2].startswith(f"{folder / 'mimic-cxr-2.0.0-chexpert.csv'}, row 1: missing column(s) ['subject_id']")
    assert len(problems) == 3


def test_check_reports_an_undecodable_jpeg(layout):
    folder, written = layout
    dicom, subject, study, _ = written["metadata"][0]
    mimic_cxr.image_path(folder, subject, study, dicom).write_bytes(b"\xff\xd8 broken")
    (problem,) = mimic_cxr.check(folder)
    assert str(mimic_cxr.image_path(folder, subject, study, dicom)) in problem and "cannot decode" in problem


def test_check_never_raises_on_an_empty_folder(tmp_path):
    assert len(mimic_cxr.check(tmp_path)) == 3


def test_spec_has_no_tasks():
    (dataset,) = mimic_cxr.medvlp_bench_datasets()
    assert (dataset.name, dataset.folder) == ("mimic_cxr", "mimic-cxr-jpg")
    assert dataset.citation and dataset.url and callable(dataset.write_synthetic)
    assert not hasattr(mimic_cxr, "medvlp_bench_tasks")


def test_synthetic_twin_passes_check(tmp_path):
    pytest.importorskip("medvlp_bench_plugins.datasets.mimic_cxr_synthetic")
    (dataset,) = mimic_cxr.medvlp_bench_datasets()
    dataset.write_synthetic(tmp_path / "mimic", 0, 0.02)
    assert mimic_cxr.check(tmp_path / "mimic") == []


def test_registered_through_the_entry_point():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    assert manager.load_setuptools_entrypoints(hookspecs.PROJECT, name="mimic_cxr") == 1
    assert [spec.name for specs in manager.hook.medvlp_bench_datasets() for spec in specs] == ["mimic_cxr"]
    assert [spec.name for specs in manager.hook.medvlp_bench_tasks() for spec in specs] == []


def test_corpus_rows_name_their_patient(layout):
    from medvlp_bench_plugins.datasets.mimic_cxr_corpus import load_corpus

    folder, _ = layout
    corpus = load_corpus(folder)
    for _, table in corpus.items():
        # files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg
        subjects = table["image_path"].str.split("/").str[-3].str[1:]
        assert (table["patient_id"] == subjects).all()
    assert sum(len(table) for _, table in corpus.items()) > 0
