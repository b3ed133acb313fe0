"""molplat-smiles: SMILES CSV datasets as bond graphs or ETKDG conformers, and a GINE model."""
