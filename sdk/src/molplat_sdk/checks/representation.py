"""Representation checks: batching loses or mixes nothing, and neighbours are the true ones."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

from molplat.representations import Batch
from molplat.specs import ComponentSpec
from molplat.structure import Structure

from molplat_sdk.checks.common import label
from molplat_sdk.errors import ConformanceError

REQUIRED_FIELDS = ("numbers", "positions", "natoms", "num_graphs")


def brute_force_images(structure: Structure, cutoff: float) -> dict[tuple[int, int, tuple[int, ...]], np.ndarray]:
    """Every directed pair within ``cutoff`` keyed by (i, j, image of j), with its vector, by
    looping over every periodic image that can reach the cell."""
    positions = structure.positions
    if structure.periodic:
        inverse = np.linalg.inv(structure.cell)
        heights = 1.0 / np.linalg.norm(inverse, axis=0)  # distances between opposite cell faces
        reach = [int(np.ceil(cutoff / h)) + 1 if p else 0 for h, p in zip(heights, structure.pbc)]
        images = list(itertools.product(*[range(-r, r + 1) for r in reach]))
    else:
        images = [(0, 0, 0)]
    pairs = {}
    for image in images:
        shift = np.asarray(image, dtype=np.float64) @ (structure.cell if structure.periodic else np.zeros((3, 3)))
        vectors = positions[None, :, :] + shift - positions[:, None, :]
        distances = np.linalg.norm(vectors, axis=-1)
        for i, j in zip(*np.nonzero(distances < cutoff)):
            if i == j and not any(image):
                continue
            pairs[(int(i), int(j), tuple(int(x) for x in image))] = vectors[i, j]
    return pairs


def brute_force_pairs(structure: Structure, cutoff: float) -> list[tuple[int, int, np.ndarray]]:
    """Every directed pair (i, j, vector to j's image) within ``cutoff``."""
    return [(i, j, v) for (i, j, _), v in brute_force_images(structure, cutoff).items()]


def _per_structure(values: torch.Tensor, natoms: list[int]) -> list[torch.Tensor]:
    return list(torch.split(values, natoms))


def _describe(pairs: list[tuple[int, int, np.ndarray]]) -> list[tuple[int, int, float, float, float]]:
    return sorted((i, j, *np.round(v, 3).tolist()) for i, j, v in pairs)


def batch_pairs(representation: Any, batch: Batch) -> list[list[tuple[int, int, np.ndarray]]]:
    """The representation's neighbour pairs, split per structure with local atom indices."""
    pairs = representation.neighbor_pairs(batch)
    natoms = batch["natoms"].tolist()
    start = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    graph = batch.atom_graph_index().numpy()
    out: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in natoms]
    vectors = pairs.vectors.detach().double().numpy()
    for i, j, v in zip(pairs.center.tolist(), pairs.neighbor.tolist(), vectors):
        g = graph[i]
        if graph[j] != g:
            out[g].append((-1, -1, v))  # a pair across structures is always wrong
        else:
            out[g].append((i - start[g], j - start[g], v))
    return out


def _equal_up_to_offset(batched: torch.Tensor, single: torch.Tensor) -> bool:
    """Equal, or for integer index fields (such as ``batch``) equal up to one constant offset."""
    if torch.equal(batched, single):
        return True
    if batched.shape != single.shape or batched.is_floating_point() or batched.dtype == torch.bool:
        return False
    offset = batched - single
    return bool((offset == offset.reshape(-1)[0]).all())


def _layout(key: str, batches: list[Batch], natoms: list[list[int]]) -> str:
    """'atom' or 'structure' when the field's leading axes follow the atoms or the structures
    in every batch size (trailing axes fixed), else 'other' (edges, images)."""
    values = [b[key] for b in batches]
    trailing = {tuple(v.shape[2:] if b.dense else v.shape[1:]) for v, b in zip(values, batches)}
    if len(trailing) == 1:
        if all(b.dense and tuple(v.shape[:2]) == tuple(b["atom_mask"].shape) for v, b in zip(values, batches)):
            return "atom"
        if all(not b.dense and v.shape[0] == sum(n) for v, b, n in zip(values, batches, natoms)):
            return "atom"
    if len({tuple(v.shape[1:]) for v in values}) == 1 and all(v.shape[0] == len(n) for v, n in zip(values, natoms)):
        return "structure"
    return "other"


def check_fields(spec: ComponentSpec, batch: Any, count: int) -> None:
    where = label(spec)
    if not isinstance(batch, Batch):
        raise ConformanceError(where, f"collate returned {type(batch).__name__}", "return molplat.representations.Batch")
    missing = [k for k in REQUIRED_FIELDS if k not in batch]
    if missing:
        raise ConformanceError(where, f"the batch lacks {missing}",
                               "every batch carries numbers, positions, natoms and num_graphs")
    if batch["num_graphs"] != count or len(batch["natoms"]) != count:
        raise ConformanceError(where, f"num_graphs/natoms describe {batch['num_graphs']}/{len(batch['natoms'])} "
                               f"structures for {count} collated", "count the collated items")


def not_float64(batch: Batch) -> dict[str, str]:
    """Floating fields of a freshly collated batch that are not float64, with their dtype."""
    return {k: str(v.dtype).replace("torch.", "") for k, v in batch.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dtype != torch.float64}


def check_float64(spec: ComponentSpec, representation: Any, structures: list[Structure]) -> None:
    """collate returns float64 floating tensors, so nothing is rounded before the core casts them once."""
    batch = representation.collate([representation.featurize(s) for s in structures])
    coarse = not_float64(batch)
    if coarse:
        raise ConformanceError(label(spec), f"collate returns {coarse}, not float64: geometry is rounded before "
                               "the core casts it to the training dtype, and float64 checks see the rounding",
                               "build every floating tensor in collate() in float64 (torch.from_numpy of float64 "
                               "arrays); molplat.data.SampleCollator casts to the training dtype once")


def check_collate(spec: ComponentSpec, representation: Any, structures: list[Structure]) -> None:
    """collate(items) holds, structure by structure, what collate([item]) holds for each alone."""
    where = label(spec)
    items = [representation.featurize(s) for s in structures]
    together = representation.collate(items)
    check_fields(spec, together, len(items))
    alone = [representation.collate([item]) for item in items]
    for single in alone:
        check_fields(spec, single, 1)
    natoms = [len(s) for s in structures]
    if together["natoms"].tolist() != natoms:
        raise ConformanceError(where, f"natoms is {together['natoms'].tolist()}, the structures have {natoms}",
                               "natoms[g] is the number of atoms of structure g")
    for field in ("numbers", "positions"):
        joined = _per_structure(together.flat_atoms(together[field]), natoms)
        for g, single in enumerate(alone):
            if not torch.equal(joined[g], single.flat_atoms(single[field])):
                raise ConformanceError(where, f"{field} of structure {g} differ between the batch and the structure "
                                       "collated alone", "keep atoms in order, structure after structure")
        expected = torch.as_tensor(np.concatenate([getattr(s, field) for s in structures]))
        got = together.flat_atoms(together[field])
        if not torch.allclose(got.double(), expected.double(), atol=1e-4):
            raise ConformanceError(where, f"{field} of the batch are not those of the structures",
                                   "copy numbers and positions (Å) from the Structure unchanged")
    pair = representation.collate(items[:2])  # a second batch size tells per-structure fields from others
    for key, value in together.items():
        if not isinstance(value, torch.Tensor) or key in ("numbers", "positions", "natoms"):
            continue
        if any(key not in b or not isinstance(b[key], torch.Tensor) for b in [pair, *alone]):
            raise ConformanceError(where, f"field {key!r} is in a batch of {len(items)} but not in smaller batches",
                                   "collate the same fields whatever the number of items")
        layout = _layout(key, [together, pair, *alone], [natoms, natoms[:2], *[[n] for n in natoms]])
        if layout == "atom":
            joined = _per_structure(together.flat_atoms(value), natoms)
            for g, single in enumerate(alone):
                if not _equal_up_to_offset(joined[g], single.flat_atoms(single[key])):
                    raise ConformanceError(where, f"per-atom field {key!r} of structure {g} differs from the structure "
                                           "collated alone", "collating must not mix structures")
        elif layout == "structure":
            for g, single in enumerate(alone):
                if not torch.equal(value[g], single[key][0]):
                    raise ConformanceError(where, f"per-structure field {key!r} of structure {g} differs from the "
                                           "structure collated alone", "collating must not mix structures")
        elif not hasattr(representation, "neighbor_pairs"):
            raise ConformanceError(where, f"field {key!r} is neither per atom nor per structure, so the SDK cannot "
                                   "compare it", "define neighbor_pairs(batch) for edge fields (see "
                                   "molplat.representations.base.NeighborPairs)")
    if hasattr(representation, "neighbor_pairs"):
        joined_pairs = batch_pairs(representation, together)
        for g, single in enumerate(alone):
            if _describe(joined_pairs[g]) != _describe(batch_pairs(representation, single)[0]):
                raise ConformanceError(where, f"the neighbour pairs of structure {g} differ between the batch and the "
                                       "structure collated alone", "offset edge indices by the atoms of earlier "
                                       "structures and keep each structure's periodic shifts")


def check_neighbors(spec: ComponentSpec, representation: Any, structures: list[Structure]) -> None:
    """Pairs in a multi-structure batch equal a brute-force search, periodic images included."""
    where = label(spec)
    cutoff = getattr(representation, "cutoff", None)
    if cutoff is None:
        raise ConformanceError(where, "it defines neighbor_pairs but no `cutoff` attribute",
                               "store the radius in Å as self.cutoff")
    limit = getattr(representation, "max_neighbors", None)
    batch = representation.collate([representation.featurize(s) for s in structures])
    found = batch_pairs(representation, batch)
    for g, structure in enumerate(structures):
        expected = brute_force_pairs(structure, cutoff)
        got = found[g]
        if any(i < 0 for i, _, _ in got):
            raise ConformanceError(where, f"structure {structure.id!r} has pairs reaching into another structure",
                                   "offset each structure's edge indices by the atoms before it in the batch")
        near_boundary = {(i, j, *np.round(v, 3).tolist()) for i, j, v in expected if abs(np.linalg.norm(v) - cutoff) < 1e-3}
        if limit is None:
            want = [p for p in _describe(expected) if p not in near_boundary]
            have = [p for p in _describe(got) if p not in near_boundary]
            if want != have:
                extra, lost = set(have) - set(want), set(want) - set(have)
                raise ConformanceError(
                    where, f"structure {structure.id!r} (periodic={structure.periodic}): {len(lost)} pairs within "
                    f"{cutoff} Å are missing and {len(extra)} are extra (e.g. {sorted(lost or extra)[:2]})",
                    "include every periodic image within the cutoff and shift = cell_offsets @ cell")
        else:
            for i in range(len(structure)):
                want_d = sorted(np.linalg.norm(v) for c, _, v in expected if c == i)[:limit]
                have_d = sorted(np.linalg.norm(v) for c, _, v in got if c == i)
                if len(want_d) != len(have_d) or not np.allclose(want_d, have_d, atol=1e-3):
                    raise ConformanceError(where, f"structure {structure.id!r}, atom {i}: neighbour distances "
                                           f"{np.round(have_d, 3).tolist()} are not the {limit} nearest "
                                           f"{np.round(want_d, 3).tolist()}", "keep the max_neighbors nearest pairs")
