"""Turn a classifier checkpoint into a backbone checkpoint for detection configs.

``export_backbone(ckpt, out)`` keeps the ``backbone.*`` entries of the classifier's
``state_dict`` with the prefix removed and saves ``{'state_dict': ..., 'meta': ...}``; a
detector loads it with ``backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=out))``
(same backbone type and arguments as in the classification config). The file holds only
tensors, strings and numbers, so it loads under ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from fq_det.utils.io import unwrap_state_dict


def extract_backbone_state_dict(checkpoint: dict, prefix: str = 'backbone.') -> OrderedDict:
    """``backbone.*`` tensors of a classifier checkpoint (``module.`` wrappers stripped)."""
    state = unwrap_state_dict(checkpoint, keys=('state_dict', ))
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith(prefix):
            out[key[len(prefix):]] = value
    if not out:
        raise KeyError(f"no '{prefix}*' weights in the checkpoint (found e.g. {list(state)[:5]}); "
                       'is it a classifier checkpoint written by tools/classification/train.py?')
    return out


def export_backbone(checkpoint: str | Path, out: str | Path) -> dict:
    """Write the backbone of ``checkpoint`` to ``out``.

    Returns ``{'out', 'num_tensors', 'num_params'}``.
    """
    import fq_det.compat  # noqa: F401  (mmengine checkpoints under weights_only=True)

    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = extract_backbone_state_dict(ckpt)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    out_meta = {'source_checkpoint': str(checkpoint), 'exported_by': 'fq_det.classification.export'}
    for key in ('epoch', 'iter', 'seed', 'mmengine_version', 'time'):
        if isinstance(meta.get(key), (str, int, float)):
            out_meta[key] = meta[key]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': state, 'meta': out_meta}, out)
    return {
        'out': str(out),
        'num_tensors': len(state),
        'num_params': int(sum(v.numel() for k, v in state.items()
                              if v.is_floating_point() and not k.endswith('_extra_state')))
    }
