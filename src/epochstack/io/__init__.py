"""Readers and writers for recording formats (EDF/EDF+/BDF, HDF5, UEA .ts, CSV)."""
