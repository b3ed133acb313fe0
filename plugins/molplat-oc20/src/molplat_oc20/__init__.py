"""molplat-oc20: the Open Catalyst 2020 S2EF and IS2RE tasks as molplat datasets."""
