"""Classification pretraining and robustness evaluation (supplement Tables 1-4) on mmpretrain.

Classifiers are mmpretrain's ``ImageClassifier`` (``GlobalAveragePooling`` neck,
``LinearClsHead``/``ClsHead``), trained and evaluated in the ``mmpretrain`` scope with its
data sets, transforms and ``Accuracy`` metric. Importing this module adds, in mmpretrain's
registries, what mmpretrain lacks: the supplement's small networks (MODELS), a safe CIFAR
reader, the generated and object-crop data sets (DATASETS) and the distortion transforms
(TRANSFORMS). fq_det's ResNet backbones and hooks stay in mmdet's registries: configs name
them ``mmdet.ResNetPOW``, ``mmdet.AlphaRegularizationHook``.
"""
from . import datasets, small_nets, transforms  # noqa: F401
from .datasets import (DataFolderNotFoundError, SafeCIFAR10, SafeCIFAR100, SyntheticClsDataset,
                       VOCObjectCropsDataset)
from .export import export_backbone, extract_backbone_state_dict
from .small_nets import CifarSmallNet, Plain10
from .tables import format_classification_table
from .transforms import WholeImageBox

__all__ = [
    'CifarSmallNet', 'Plain10', 'SafeCIFAR10', 'SafeCIFAR100', 'SyntheticClsDataset',
    'VOCObjectCropsDataset', 'DataFolderNotFoundError', 'WholeImageBox', 'export_backbone',
    'extract_backbone_state_dict', 'format_classification_table'
]
