"""Image classifier: backbone -> global average pooling -> (linear) head, on mmengine's BaseModel.

Data samples are :class:`mmengine.structures.BaseDataElement` objects with ``gt_label``
(a 0-d ``LongTensor``, written by ``PackClsInputs``); predictions add ``pred_score``
(softmax probabilities, shape (num_classes,)) and ``pred_label``.

Loss: cross entropy ``L = -log softmax(z)_y`` (optionally label-smoothed). The alpha
regulariser of POW/HPOW layers is *not* added here: it reaches the loss through
``fq_det.engine.AlphaRegularizationHook`` listed in the config's ``custom_hooks``, exactly
as for detectors.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel, BaseModule
from mmengine.structures import BaseDataElement
from torch import nn

from mmdet.registry import MODELS


@MODELS.register_module()
class ClsHead(BaseModule):
    """Global average pooling, then dropout + a linear layer (``in_channels`` given) or nothing.

    With ``in_channels=None`` the pooled feature map *is* the logits (supplement Table 2's
    CIFAR net ends in a conv with ``num_classes`` channels), so its channel count must equal
    ``num_classes``.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int | None = None,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        loss_weight: float = 1.0,
        init_cfg: dict | list | None = dict(type='Normal', layer='Linear', std=0.01)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.loss_weight = loss_weight
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes) if in_channels is not None else None

    def forward(self, feats: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Last feature map (N, C, H, W) -> logits (N, num_classes)."""
        x = feats[-1] if isinstance(feats, (tuple, list)) else feats
        x = x.mean(dim=(2, 3)) if x.dim() == 4 else x
        if self.fc is None:
            if x.shape[1] != self.num_classes:
                raise ValueError(f'ClsHead without in_channels needs {self.num_classes} input '
                                 f'channels (one per class), got {x.shape[1]}; set in_channels '
                                 'to add a linear layer')
            return x
        return self.fc(self.dropout(x))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict:
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            acc = (logits.argmax(dim=1) == labels).float().mean() * 100
        return dict(loss_cls=self.loss_weight * loss, acc_top1=acc)


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Backbone (any MODELS backbone: ResNet/ResNetSF/ResNetPOW/ResNetHPOW, CifarSmallNet,
    Plain10) followed by :class:`ClsHead`.

    ``forward(inputs, data_samples, mode)`` follows mmengine: ``'loss'`` -> dict of losses
    (``loss_cls``, plus ``acc_top1`` for the log), ``'predict'`` -> data samples with
    ``pred_score``/``pred_label``, ``'tensor'`` -> logits.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: dict | None = None,
                 init_cfg: dict | list | None = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImgDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: torch.Tensor):
        return self.backbone(inputs)

    def forward(self, inputs: torch.Tensor, data_samples: list | None = None, mode: str = 'tensor'):
        logits = self.head(self.extract_feat(inputs))
        if mode == 'tensor':
            return logits
        if data_samples is None:
            raise ValueError(f"mode '{mode}' needs data_samples")
        if mode == 'loss':
            labels = torch.stack([_label(s) for s in data_samples]).to(logits.device)
            return self.head.loss(logits, labels)
        if mode == 'predict':
            scores = logits.float().softmax(dim=1)
            for sample, score in zip(data_samples, scores):
                sample.pred_score = score.detach()
                sample.pred_label = score.argmax().detach()
            return data_samples
        raise ValueError(f"Invalid mode '{mode}': choose 'loss', 'predict' or 'tensor'")


def _label(sample: BaseDataElement | dict) -> torch.Tensor:
    label = sample['gt_label'] if isinstance(sample, dict) else sample.gt_label
    return torch.as_tensor(label, dtype=torch.long).reshape(())
