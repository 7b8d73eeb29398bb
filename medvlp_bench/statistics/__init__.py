"""Statistics of run records: cluster-bootstrap intervals over test patients (:mod:`.bootstrap`, COCO mAP in
:mod:`.detection_map`, retrieval Recall@K / Precision@K and their resampled queries in :mod:`.retrieval`),
DeLong's AUROC interval (:mod:`.delong`), the two-level paired bootstrap over patients and seeds (:mod:`.paired`),
multiple-comparison corrections (:mod:`.multiple_comparisons`), and the statistic of a record's metric from its
per-sample outputs (:mod:`.record_statistics`). See docs/statistics.md."""
