"""The per-rank samplers of the core loaders: what makes 2 processes (molplat-ddp) train like 1."""
from __future__ import annotations

import torch

from molplat.training.lightning import RankShare, ShuffledIndices


def test_rank_batches_union_to_the_one_process_batch():
    n, batch, ranks = 96, 16, 2
    single = list(ShuffledIndices(n, seed=3, chunk=7))
    shares = [list(ShuffledIndices(n, seed=3, chunk=7, rank=r, replicas=ranks)) for r in range(ranks)]
    for k in range(n // batch):
        together = sorted(i for share in shares for i in share[k * batch // ranks:(k + 1) * batch // ranks])
        assert together == sorted(single[k * batch:(k + 1) * batch])
    assert sorted(shares[0] + shares[1]) == list(range(n))  # each structure read by exactly one rank


def test_ranks_get_equal_counts_and_cover_everything():
    shares = [list(ShuffledIndices(10, seed=0, rank=r, replicas=3)) for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]  # equal batch counts, or DDP waits forever
    assert set().union(*shares) == set(range(10))
    assert len(list(ShuffledIndices(10, seed=0))) == 10 and sorted(ShuffledIndices(10, seed=0)) == list(range(10))


def test_validation_shares_do_not_repeat():
    shares = [list(RankShare(7, r, 2)) for r in range(2)]
    assert shares == [[0, 2, 4, 6], [1, 3, 5]]
    assert list(RankShare(5)) == [0, 1, 2, 3, 4]


def test_every_epoch_a_new_order_the_same_on_every_rank():
    a, b = ShuffledIndices(50, seed=1, rank=0, replicas=2), ShuffledIndices(50, seed=1, rank=1, replicas=2)
    first = (list(a), list(b))
    second = (list(a), list(b))
    assert first != second
    assert sorted(first[0] + first[1]) == sorted(second[0] + second[1]) == list(range(50))
    assert torch.equal(torch.tensor(sorted(first[0] + first[1])), torch.arange(50))
