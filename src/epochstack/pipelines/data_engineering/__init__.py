"""data_engineering: ingest, validate, filter, epoch, flag artefacts, subject-wise folds."""
