"""Exact k-nearest-neighbour search in bounded memory (what PatchCore's FAISS ``IndexFlatL2`` does)."""

from __future__ import annotations

import torch


def nearest_neighbours(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1, max_block: int = 2**24
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest bank rows of each query (Euclidean), ascending: distances and indices (Q, k).

    Distances are computed with ``torch.cdist`` block by block, never more than ``max_block``
    query×bank pairs at once, keeping a running top-k — memory stays bounded for large banks.
    (FAISS ``IndexFlatL2``, which the released PatchCore uses, returns the *squared* distances of the
    same neighbours; square these to get them.)
    """
    if k < 1 or k > bank.shape[0]:
        raise ValueError(f"k must be in [1, {bank.shape[0]}] (bank size), got {k}")
    if max_block < 1:
        raise ValueError(f"max_block must be positive, got {max_block}")
    bank_step = min(bank.shape[0], max_block)
    query_step = max(1, max_block // bank_step)
    all_distances, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_step):
        query = queries[q_start : q_start + query_step].float()
        best_d = best_i = None
        for b_start in range(0, bank.shape[0], bank_step):
            block = torch.cdist(query, bank[b_start : b_start + bank_step].float())
            d, i = block.topk(min(k, block.shape[1]), dim=1, largest=False, sorted=True)
            i = i + b_start
            if best_d is not None:  # merge with the best of the previous blocks
                merged_d, merged_i = torch.cat([best_d, d], dim=1), torch.cat([best_i, i], dim=1)
                d, order = merged_d.topk(min(k, merged_d.shape[1]), dim=1, largest=False, sorted=True)
                i = merged_i.gather(1, order)
            best_d, best_i = d, i
        all_distances.append(best_d)
        all_indices.append(best_i)
    return torch.cat(all_distances), torch.cat(all_indices)
