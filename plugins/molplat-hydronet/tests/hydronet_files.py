"""Shared by the tests: the tiny dev-set settings, and files written in the published HydroNet layout."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

#: the tiny dev set the tests share
TINY = {"min_waters": 3, "max_waters": 4, "clusters_per_size": 2, "frames_per_cluster": 3}


def water_cluster(waters: int, seed: int) -> np.ndarray:
    """Positions (O H H per molecule, Å) of a plausible cluster: the dev set's starting arrangement."""
    from molplat_hydronet.devset import starting_arrangement

    return starting_arrangement(waters, np.random.default_rng(seed)) + 20.0  # the release's frames sit far from 0


def xyz_text(frames: list[tuple[np.ndarray, float]]) -> str:
    """Frames written exactly as the W{n}_geoms_all.xyz files are: a right-aligned atom count, the energy
    (kcal/mol) alone on the comment line with trailing blanks, and ' O    x  y  z    ' atom lines."""
    lines = []
    for positions, energy in frames:
        lines.append(f"{len(positions):12d}")
        lines.append(f"{energy:.7f}    ")
        for k, (x, y, z) in enumerate(positions):
            lines.append(f" {'O' if k % 3 == 0 else 'H'}    {x:.7f}       {y:.8f}       {z:.8f}    ")
    return "\n".join(lines) + "\n"


def write_release(root: Path, sizes: dict[int, list[float]], zipped: tuple[int, ...] = ()) -> dict[int, list]:
    """A W3-W30_all_geoms_TTM2.1-F folder: W{n}_geoms_all.xyz, or W{n}_geoms_all.zip holding it (sizes in
    ``zipped``); returns the frames written, per size."""
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for n, energies in sizes.items():
        frames = [(water_cluster(n, seed=100 * n + k), e) for k, e in enumerate(energies)]
        written[n] = frames
        text = xyz_text(frames)
        if n in zipped:
            with zipfile.ZipFile(root / f"W{n}_geoms_all.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(f"W{n}_geoms_all.xyz", text)
        else:
            (root / f"W{n}_geoms_all.xyz").write_text(text)
    return written
