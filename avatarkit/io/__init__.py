"""Reading and writing: HDF5 artifacts (``hdf5``), mesh files (``meshfile``), atomic outputs."""
