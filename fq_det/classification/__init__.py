"""Classification pretraining and robustness evaluation (supplement Tables 1-4).

Importing registers the classifier, heads, small networks (MODELS), the top-k metric
(METRICS), data sets (DATASETS) and transforms (TRANSFORMS) in mmdet's registries.
"""
from . import classifier, datasets, metrics, small_nets, transforms  # noqa: F401
from .classifier import ClsHead, ImageClassifier
from .datasets import (CIFARClsDataset, DataFolderNotFoundError, ImageFolderClsDataset,
                       SyntheticClsDataset, VOCObjectCropsDataset)
from .export import export_backbone, extract_backbone_state_dict
from .metrics import TopKAccuracy
from .robustness import format_classification_table, run_classification_robustness
from .small_nets import CifarSmallNet, Plain10

__all__ = [
    'ImageClassifier', 'ClsHead', 'CifarSmallNet', 'Plain10', 'TopKAccuracy', 'CIFARClsDataset',
    'ImageFolderClsDataset', 'SyntheticClsDataset', 'VOCObjectCropsDataset',
    'DataFolderNotFoundError', 'export_backbone',
    'extract_backbone_state_dict', 'run_classification_robustness', 'format_classification_table'
]
