"""Top-k classification accuracy (percent) as an mmengine metric.

``top-k = 100 * mean_i [ rank_i < k ]`` where ``rank_i`` is the number of classes scored
strictly higher than sample i's true class (ties count in the sample's favour only if
they are not higher). With ``k >= num_classes`` top-k is 100.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdet.registry import METRICS


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Keys ``<prefix>/top1``, ``<prefix>/top5`` ... (default prefix ``accuracy``)."""

    default_prefix = 'accuracy'

    def __init__(self,
                 topk: Sequence[int] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = tuple(int(k) for k in topk)
        if not topk or min(topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')
        self.topk = topk

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            score = torch.as_tensor(sample['pred_score']).float()
            label = int(torch.as_tensor(sample['gt_label']).reshape(()))
            rank = int((score > score[label]).sum())
            self.results.append(rank)

    def compute_metrics(self, results: list) -> dict:
        if not results:
            raise ValueError('TopKAccuracy got no samples to evaluate')
        ranks = np.asarray(results)
        return {f'top{k}': float((ranks < k).mean() * 100) for k in self.topk}
