"""The analyses of one simulated structure: numbers for summary.json and the PNGs beside its trajectory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from molplat_ase import analysis, plots

#: most frames of a reference that enter the distributions (a long reference is subsampled evenly)
MAX_REFERENCE_FRAMES = 2000


class StructureReport:
    """Analyses the trajectory of one starting structure; ``files`` are the PNGs written (relative)."""

    def __init__(self, simulator: Any, folder: Path, stem: str, sid: str, context: Any) -> None:
        self.simulator, self.folder, self.stem, self.sid, self.context = simulator, folder, stem, sid, context
        self.plots = bool(context.pipeline.output.get("plots", True))
        self.files: list[str] = []

    def _png(self, kind: str) -> Path:
        path = self.folder / f"{self.stem}-{kind}.png"
        self.files.append(self.context.relative(path))
        return path

    def analyse(self, trajectory: Path, series: analysis.Series, reference: list[Any]) -> dict[str, float]:
        import ase.io

        frames = ase.io.read(trajectory, index=":", format="extxyz")
        numbers: dict[str, float] = {"atoms": float(len(frames[0])), "frames": float(len(frames))}
        if self.simulator.name == "relax":
            numbers.update(self._relaxation(series))
            return numbers
        numbers.update(self._thermodynamics(series, len(frames[0])))
        numbers.update(self._geometry(frames, reference))
        return numbers

    # -- energies, temperature, volume ------------------------------------------------------
    def _thermodynamics(self, series: analysis.Series, n_atoms: int) -> dict[str, float]:
        arrays = series.arrays()
        target = self.simulator.target_temperature()
        numbers = analysis.temperature_summary(series, target)
        drift = analysis.energy_drift(series, n_atoms)
        if self.simulator.name == "nve":
            numbers.update(drift)
        numbers["potential_energy_mean_eV"] = float(arrays["potential"].mean())
        if np.isfinite(arrays["volume"]).all() and len(arrays["volume"]):
            half = arrays["volume"][len(arrays["volume"]) // 2:]
            numbers.update(volume_mean_A3=float(half.mean()), volume_std_A3=float(half.std()),
                           volume_start_A3=float(arrays["volume"][0]))
        if self.plots:
            title = f"{self.simulator.name}: {self.sid}"
            if self.simulator.name == "nve":
                plots.energies(self._png("energy"), arrays, title, drift["drift_eV_per_atom_per_ps"])
            plots.series(self._png("temperature"), arrays["time_fs"] / 1000.0, arrays["temperature"], "time (ps)",
                         "temperature (K)", title, target)
            if "volume_mean_A3" in numbers and self.simulator.name == "npt":
                plots.series(self._png("volume"), arrays["time_fs"] / 1000.0, arrays["volume"], "time (ps)",
                             "volume (Å³)", title)
        return numbers

    def _relaxation(self, series: analysis.Series) -> dict[str, float]:
        arrays = series.arrays()
        numbers = {"energy_start_eV": float(arrays["potential"][0]), "energy_final_eV": float(arrays["potential"][-1]),
                   "energy_change_eV": float(arrays["potential"][-1] - arrays["potential"][0]),
                   "fmax_start_eV_per_A": float(arrays["fmax"][0]), "fmax_final_eV_per_A": float(arrays["fmax"][-1]),
                   "optimizer_steps": float(arrays["time_fs"][-1]),
                   "converged": float(getattr(series, "converged", False))}
        if np.isfinite(arrays["volume"]).all():
            numbers.update(volume_start_A3=float(arrays["volume"][0]), volume_final_A3=float(arrays["volume"][-1]))
        if self.plots:
            plots.series(self._png("energy"), arrays["time_fs"], arrays["potential"], "optimizer step", "energy (eV)",
                         f"{self.simulator.name}: {self.sid}")
        return numbers

    # -- bonds, angles, RDF -----------------------------------------------------------------
    def _geometry(self, frames: list[Any], reference: list[Any]) -> dict[str, float]:
        numbers: dict[str, float] = {}
        scale = self.simulator.bond_scale
        topo = analysis.topology(frames[0], scale)
        bonds, angles = analysis.geometry_samples(frames, topo)
        ref_bonds = ref_angles = None
        if reference:
            reference = _even(reference, MAX_REFERENCE_FRAMES)
            ref_topo = analysis.topology(reference[0], scale)
            ref_bonds, ref_angles = analysis.geometry_samples(reference, ref_topo)
            numbers["reference_frames"] = float(len(reference))
        bond_w = analysis.distribution_distances(bonds, ref_bonds) if ref_bonds else {}
        angle_w = analysis.distribution_distances(angles, ref_angles) if ref_angles else {}
        for name, values in bonds.items():
            numbers[f"bond_mean_A[{name}]"] = float(values.mean())
        for name, value in bond_w.items():
            numbers[f"bond_wasserstein_A[{name}]"] = value
        for name, value in angle_w.items():
            numbers[f"angle_wasserstein_deg[{name}]"] = value
        if bond_w:
            numbers["bond_wasserstein_A"] = float(np.mean(list(bond_w.values())))
        if angle_w:
            numbers["angle_wasserstein_deg"] = float(np.mean(list(angle_w.values())))
        periodic = all(frames[0].pbc)
        comparable = bool(reference) and all(starting_like(ref, frames[0]) and all(ref.pbc) == periodic
                                             for ref in reference)
        rmax = analysis.allowed_rmax(frames + (reference if comparable else []), self.simulator.rdf_rmax)
        r, g, rmax = analysis.radial_distribution(frames, rmax, self.simulator.rdf_bins)
        numbers["rdf_first_peak_A"] = analysis.first_peak(r, g)
        numbers["rdf_rmax_A"] = float(rmax)
        ref_rdf = None
        if comparable:
            ref_r, ref_g, _ = analysis.radial_distribution(reference, rmax, self.simulator.rdf_bins)
            ref_rdf = (ref_r, ref_g)
            numbers["rdf_rms_difference"] = float(np.sqrt(np.mean((ref_g - g) ** 2)))
        if self.plots:
            title = f"{self.simulator.name}: {self.sid}"
            if bonds:
                plots.distributions(self._png("bonds"), bonds, ref_bonds, bond_w, "Å", f"bond lengths, {title}")
            if angles:
                plots.distributions(self._png("angles"), angles, ref_angles, angle_w, "degrees",
                                    f"bond angles, {title}")
            plots.rdf(self._png("rdf"), r, g, ref_rdf, f"radial distribution, {title}")
        return numbers


def starting_like(a: Any, b: Any) -> bool:
    """Whether two structures have the same atoms (so their RDFs compare)."""
    return len(a) == len(b) and sorted(a.numbers.tolist()) == sorted(b.numbers.tolist())


def _even(frames: list[Any], most: int) -> list[Any]:
    if len(frames) <= most:
        return frames
    picks = np.linspace(0, len(frames) - 1, most).round().astype(int)
    return [frames[int(k)] for k in picks]
