"""molplat-adios: the preprocessed store as ADIOS2 files (``[data] store_format = "adios"``)."""
