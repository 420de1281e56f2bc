"""Checkpoints checked before a tool uses them: readable, and written for the config's model.

mmengine loads weights with ``strict=False``: a checkpoint of another model (plain ResNet
weights given to a POW config) loads with a warning in the log, and the missing weights
keep their initial values. :func:`check_checkpoint_matches` turns that into an error that
lists what differs, unless the caller allows a partial load.
"""
from __future__ import annotations

import copy
import os
import pickle
import sys
import zipfile
from collections.abc import Mapping

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from fq_det.utils.io import unwrap_state_dict

__all__ = ['load_checkpoint_file', 'checkpoint_state_dict', 'compare_state_dicts',
           'describe_differences', 'check_checkpoint_matches']

_LISTED = 4  # keys shown per kind of difference
# How files written by torch.save begin: a zip archive, or (legacy format) a pickle.
_TORCH_SAVE_MAGIC = (b'PK\x03\x04', b'\x80')


def _refusal_reason(err: pickle.UnpicklingError) -> str:
    """The line of torch's message that names what was refused (e.g. an unsupported global)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    named = [ln for ln in lines if 'WeightsUnpickler error' in ln or 'Unsupported' in ln]
    return (named or lines or [type(err).__name__])[0]


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """``torch.load`` on CPU with ``weights_only=True``; a named error for a bad file."""
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if os.path.getsize(path) == 0:
        raise ValueError(f'checkpoint {path} is empty (0 bytes)')
    with open(path, 'rb') as f:
        if not f.read(4).startswith(_TORCH_SAVE_MAGIC):
            raise ValueError(f'checkpoint {path} is not a checkpoint (not a file written '
                             'by torch.save)')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f'checkpoint {path} was refused by torch\'s safe loader (weights_only=True): '
            f'{_refusal_reason(err)}') from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f'checkpoint {path} is not readable (truncated, or not written by '
                         f'torch.save?): {reason}') from None
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'checkpoint {path} holds a {type(checkpoint).__name__}, not a dict '
                         'of weights')
    return dict(checkpoint)


def checkpoint_state_dict(checkpoint: Mapping) -> dict:
    """The weights of a loaded checkpoint (``state_dict`` or the dict itself), without the
    ``module.`` prefix of wrapped models (as mmengine's ``load_checkpoint`` strips it)."""
    state = unwrap_state_dict(checkpoint, keys=('state_dict', ))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def compare_state_dicts(model_state: Mapping, ckpt_state: Mapping) -> dict[str, list[str]]:
    """Keys the checkpoint lacks, keys the model lacks, and keys whose shapes differ.

    A quantizer's exponent-reading record (``<layer>._extra_state``) may be absent: older
    checkpoints have none, and a record that disagrees is refused when the weights load."""
    missing = [k for k in model_state if k not in ckpt_state
               and not k.endswith('._extra_state')]
    unexpected = [k for k in ckpt_state if k not in model_state]
    shape = [f'{k} {tuple(ckpt_state[k].shape)} vs {tuple(model_state[k].shape)}'
             for k in model_state if k in ckpt_state
             and tuple(ckpt_state[k].shape) != tuple(model_state[k].shape)]
    return {'missing': missing, 'unexpected': unexpected, 'shape': shape}


def _listing(keys: list[str]) -> str:
    shown = ', '.join(keys[:_LISTED])
    return shown + (f', ... ({len(keys) - _LISTED} more)' if len(keys) > _LISTED else '')


def describe_differences(diff: Mapping[str, list[str]]) -> str:
    """One line: how many keys are missing / unexpected / of another shape, with examples."""
    parts = []
    if diff['missing']:
        parts.append(f'{len(diff["missing"])} missing ({_listing(diff["missing"])})')
    if diff['unexpected']:
        parts.append(f'{len(diff["unexpected"])} unexpected ({_listing(diff["unexpected"])})')
    if diff['shape']:
        parts.append(f'{len(diff["shape"])} of another shape ({_listing(diff["shape"])})')
    return '; '.join(parts)


def build_model_state(cfg: Config) -> dict:
    """The ``state_dict`` of the config's model, freshly built (no weights are loaded)."""
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # a deep copy: building fills sub-configs in place (mmdet adds train/test cfgs to heads)
    return MODELS.build(copy.deepcopy(cfg.model)).state_dict()


def check_checkpoint_matches(cfg: Config, path: str | os.PathLike, allow_partial: bool = False,
                             flag: str | None = '--allow-partial-load') -> dict[str, list[str]]:
    """Raise ``ValueError`` unless the checkpoint at ``path`` holds every weight of the
    config's model with the right shape (and nothing else).

    With ``allow_partial`` a mismatch is printed as a one-line warning on stderr instead; an unreadable file is an error either way. ``flag``: the command-line flag
    that allows a partial load, named in the error (``None``: there is none). Returns the
    differences.
    """
    checkpoint = load_checkpoint_file(path)
    diff = compare_state_dicts(build_model_state(cfg), checkpoint_state_dict(checkpoint))
    if any(diff.values()) and allow_partial:
        print(f'warning: {flag or "partial load"}: checkpoint {path} does not match the model: '
              f'{describe_differences(diff)}; missing weights keep their initial values',
              file=sys.stderr, flush=True)
    elif any(diff.values()):
        config = getattr(cfg, 'filename', None) or 'the config'
        way_out = (f'; pass {flag} to use it anyway (missing weights keep their initial '
                   'values)' if flag else '')
        raise ValueError(
            f'checkpoint {path} does not match the model of {config}: '
            f'{describe_differences(diff)}. It was written for another model (for example '
            f'plain ResNet weights for a quantized backbone){way_out}')
    return diff
