"""molplat-coremof: metal-organic framework datasets for molplat (CoRE MOF 2019 and hMOF folders)."""

__version__ = "0.1.0"
